"""A promotion ladder across two MLflow servers: dev and staging in the sandbox's server, prod in a second one.

The prod rung's `registry_uri` is the second server's URL, which only exists once this module has started it
(`mlflow_servers.mlflow_server`, module-scoped), so the policy is written here and the sandbox's workers (started
with tests/integration/policies) do not know it. The aliases handler therefore runs in this process, as
tests/integration/test_workspaces.py does for workspaces: the real MLflow adapters on both servers (the other one
from `registry_factory.rung_registries`, as the function builds it), each request handed to it as the SQS record
EventBridge would deliver. Its events are kept in memory. A rollback at prod is handled by an aliases function
configured on the prod server (the prod side's own), from prod's own history.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.server.auth.client import AuthServiceClient
from mlflow.server.auth.permissions import RESOURCE_TYPE_REGISTERED_MODEL

from functions.adapters.mlflow_registry import MlflowRegistry
from functions.adapters.registry_factory import rung_registries
from functions.adapters.s3_artifacts import S3ArtifactStore
from functions.domain.aliases import AliasKeeper
from functions.domain.ladder import Climber, Side
from functions.domain.policy import load_policies
from functions.domain.tags import (
    IDENTITY_TAG,
    LADDER_APPROVER_TAG,
    LADDER_ENVIRONMENT_TAG,
    LADDER_SOURCE_ENVIRONMENT_TAG,
    LADDER_SOURCE_MODEL_TAG,
    LADDER_SOURCE_VERSION_TAG,
    REGISTERED_BY,
    REGISTERED_BY_TAG,
    TAG_STATUS,
    TAG_VERDICT,
)
from functions.domain.validation import EvidenceReader
from functions.handlers import aliases
from functions.models.events import ModelVersionPromoted
from sandbox import temporary_environment
from tests.builders import FakeContext, policies_folder, sqs_event
from tests.conftest import load_event
from tests.fakes import FakeEventPublisher, FakeQueue
from tests.integration.mlflow_servers import AUTH_ADMIN, basic_auth_server, mlflow_server
from tests.integration.sandboxes import alias_holder, ops

PROMOTER = "promoter"


@pytest.fixture(scope="module")
def auth_prod_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A basic-auth MLflow server (anonymous: nothing; everyone signed in: READ) with a `promoter` user."""
    workdir = tmp_path_factory.mktemp("mlflow-prod-auth")
    with basic_auth_server(workdir, "MLflow basic-auth server of the prod rung", users=[PROMOTER]) as server:
        yield server


@pytest.fixture(scope="module")
def prod_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow-prod"), "MLflow server of the prod rung") as url:
        yield url


def body(detail_type: str, **detail: str | None) -> str:
    event = {**load_event("model_version_registered.json"), "detail-type": detail_type}
    event["detail"] = {key: value for key, value in detail.items() if value is not None}
    return json.dumps(event)


def ladder_policies(folder: Path, dev: str, prod_uri: str, requires: str = "", secret: str = "") -> Path:
    """A policies folder with dev's ladder: dev -> staging (dev's server) -> prod (the server at `prod_uri`, reached
    with the credentials `secret` when one is given)."""
    credentials = f"credentials_secret: '{secret}', " if secret else ""
    prod = (
        f"{{name: prod, model: {dev}-prod, registry_uri: '{prod_uri}', aliases: [champion], {credentials}{requires}}}"
    )
    policy = f"""
promotion: {{aliases: {{challenger: always}}}}
ladder:
  environments:
    - {{name: dev, model: {dev}, aliases: [challenger]}}
    - {{name: staging, model: {dev}-staging, aliases: [challenger]}}
    - {prod}
"""
    return policies_folder(folder, default="{}\n", **{dev: policy})


class AliasesFunction:
    """The aliases handler on one registry (its own), climbing to rungs in others as the function does
    (`registry_factory.rung_registries`: `other_registry` with the secret the rung names, read from Secrets Manager)."""

    def __init__(self, url: str, bucket: str, policies: Path) -> None:
        self.registry = MlflowRegistry(MlflowClient(url))
        self.events = FakeEventPublisher()
        self.queue = FakeQueue()
        loaded = load_policies(policies)
        artifacts = S3ArtifactStore()

        def keeper(registry: MlflowRegistry) -> AliasKeeper:
            reader = EvidenceReader(bucket=bucket, registry=registry, artifacts=artifacts)
            return AliasKeeper(loaded, registry=registry, reader=reader, events=self.events)

        registry_at = rung_registries(loaded)

        def side(uri: str) -> Side:
            there = registry_at(uri)
            return Side(there, keeper(there))

        own = keeper(self.registry)
        climber = Climber(loaded, registry=self.registry, keeper=own, events=self.events, sides=side)
        self.dependencies = aliases.Dependencies(keeper=own, queue=self.queue, climber=climber)

    def promote(self, model: str, version: str, to: str, correlation_id: str, approver: str | None = None) -> list[str]:
        return self.handle(
            "Environment Promotion Requested",
            model_name=model,
            version=version,
            environment=to,
            approver=approver,
            correlation_id=correlation_id,
        )

    def handle(self, detail_type: str, **detail: str | None) -> list[str]:
        """Handle one request; the ids of the records left for the queue to retry (none: handled or dead-lettered)."""
        record = body(detail_type, requested_by="ci", **detail)
        response = aliases.lambda_handler(sqs_event(record), FakeContext(), dependencies=self.dependencies)
        return [item["itemIdentifier"] for item in response.get("batchItemFailures", [])]


def test_a_version_climbs_from_one_server_into_another_once_and_prod_rolls_back_alone(
    sandbox, mlflow_client, prod_server: str, model_name: str, tmp_path: Path, capsys
):
    # GIVEN a ladder dev -> staging (the sandbox's server) -> prod (the second server, approval required)
    dev, staging, prod = model_name, f"{model_name}-staging", f"{model_name}-prod"
    policies = ladder_policies(tmp_path, dev, prod_server, "requires: {approval: true}")
    function = AliasesFunction(sandbox.mlflow_tracking_uri, sandbox.bucket, policies)
    prod_client = MlflowClient(prod_server)
    # AND two dev versions as the register and validate routes leave them (passed), files in the bucket
    mlflow_client.create_registered_model(dev)
    files = {}
    for label in ("1", "2"):
        files[label] = f"s3://{sandbox.bucket}/models/{dev}/{label}"
        mlflow_client.create_model_version(
            dev,
            files[label],
            tags={
                REGISTERED_BY_TAG: REGISTERED_BY,
                IDENTITY_TAG: f"{files[label]}/MLmodel#v{label}",
                TAG_STATUS: "passed",
                TAG_VERDICT: json.dumps({"validated_at": "2026-01-01T00:00:00+00:00", "reasons": ""}),
            },
        )

    # WHEN v1 is promoted to staging, then to prod by alice, and each request comes twice
    for _ in range(2):
        assert not function.promote(dev, "1", "staging", "x-staging")
    for _ in range(2):
        assert not function.promote(dev, "1", "prod", "x-prod", approver="alice")
    assert function.queue.dead_letters == []
    # THEN staging (same server) has one copy made by MLflow's copy_model_version, with challenger
    [staged] = mlflow_client.search_model_versions(f"name='{staging}'")
    assert staged.source == f"models:/{dev}/1"
    assert alias_holder(mlflow_client, staging, "challenger") == "1"
    # AND prod (the second server) has one version, registered from the upload's files, with its lineage and champion
    [released] = prod_client.search_model_versions(f"name='{prod}'")
    assert released.source == files["1"]
    assert not released.run_id
    assert (released.tags[LADDER_ENVIRONMENT_TAG], released.tags[LADDER_SOURCE_ENVIRONMENT_TAG]) == ("prod", "staging")
    assert (released.tags[LADDER_SOURCE_MODEL_TAG], released.tags[LADDER_SOURCE_VERSION_TAG]) == (staging, "1")
    assert released.tags[LADDER_APPROVER_TAG] == "alice"
    assert released.tags[IDENTITY_TAG] == f"{files['1']}/MLmodel#v1"
    assert alias_holder(prod_client, prod, "champion") == "1"
    assert not list(mlflow_client.search_model_versions(f"name='{prod}'"))  # nothing in the wrong server
    promoted = [e for e in function.events.published if isinstance(e, ModelVersionPromoted)]
    assert [(e.to_environment, e.model_name) for e in promoted] == [("staging", staging), ("prod", prod)]

    # WHEN v2 climbs to prod too, and prod's aliases function rolls champion back from prod's own history
    assert not function.promote(dev, "2", "staging", "y-staging")
    assert not function.promote(dev, "2", "prod", "y-prod", approver="alice")
    assert alias_holder(prod_client, prod, "champion") == "2"
    assert alias_holder(mlflow_client, staging, "challenger") == "2"
    at_prod = AliasesFunction(prod_server, sandbox.bucket, policies)
    at_prod.handle("Rollback Requested", model_name=prod, alias="champion", correlation_id="rb")
    # THEN prod's champion is v1 again, and staging is left alone
    assert at_prod.queue.dead_letters == []
    assert alias_holder(prod_client, prod, "champion") == "1"
    assert alias_holder(mlflow_client, staging, "challenger") == "2"
    assert [
        len(c.search_model_versions(f"name='{m}'")) for c, m in ((mlflow_client, staging), (prod_client, prod))
    ] == [2, 2]

    # AND `ops history` on the source shows where its versions went; `ops ladder` reads prod from its own server
    capsys.readouterr()
    assert ops(sandbox, "history", staging, "--alias", "challenger") == 0
    shown = capsys.readouterr().out
    assert f"v1 promoted to prod: {prod} v1 in {prod_server}  by alice  (correlation id x-prod)" in shown
    assert f"v2 promoted to prod: {prod} v2 in {prod_server}  by alice" in shown
    assert ops(sandbox, "ladder", dev, "--policies", str(policies), "--json") == 0
    rungs = json.loads(capsys.readouterr().out.splitlines()[-1])["environments"]
    assert [(r["environment"], r["aliases"]) for r in rungs] == [
        ("dev", {"challenger": None}),
        ("staging", {"challenger": "2"}),
        ("prod", {"champion": "1"}),
    ]


def test_a_rung_in_a_server_that_does_not_answer_is_retried(
    sandbox, mlflow_client, model_name: str, tmp_path: Path, monkeypatch
):
    # GIVEN a ladder whose prod is on a port nothing listens on, and a dev version at staging
    from sandbox.processes import free_port

    dev, staging = model_name, f"{model_name}-staging"
    down = f"http://127.0.0.1:{free_port()}"
    function = AliasesFunction(sandbox.mlflow_tracking_uri, sandbox.bucket, ladder_policies(tmp_path, dev, down))
    mlflow_client.create_registered_model(dev)
    mlflow_client.create_model_version(
        dev, f"s3://{sandbox.bucket}/models/{dev}/1", tags={REGISTERED_BY_TAG: REGISTERED_BY, TAG_STATUS: "passed"}
    )
    assert not function.promote(dev, "1", "staging", "d-s")
    # WHEN it is promoted to prod (MLflow's client failing fast, as the functions set it)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    retried = function.promote(dev, "1", "prod", "d-prod")
    # THEN the record is left for the queue to retry (not dead-lettered), and staging is as it was
    assert retried == ["msg-0"]
    assert function.queue.dead_letters == []
    assert alias_holder(mlflow_client, staging, "challenger") == "1"


def test_a_rung_on_a_server_with_authentication_is_reached_with_its_own_secret_alone(
    sandbox, mlflow_client, auth_prod_server: dict[str, str], model_name: str, tmp_path: Path
):
    # GIVEN prod on a basic-auth server, reached with a Secrets Manager secret of its own (its password wrong at
    # first), while the functions' own server (the sandbox's) takes no credentials at all
    dev, prod, url = model_name, f"{model_name}-prod", auth_prod_server["url"]
    secrets_manager = sandbox.client("secretsmanager")
    wrong = json.dumps({"username": PROMOTER, "password": f"wrong-{uuid.uuid4().hex}"})
    arn = secrets_manager.create_secret(Name=f"{dev}-prod-mlflow", SecretString=wrong)["ARN"]
    function = AliasesFunction(
        sandbox.mlflow_tracking_uri, sandbox.bucket, ladder_policies(tmp_path, dev, url, secret=arn)
    )
    mlflow_client.create_registered_model(dev)
    mlflow_client.create_model_version(
        dev, f"s3://{sandbox.bucket}/models/{dev}/1", tags={REGISTERED_BY_TAG: REGISTERED_BY, TAG_STATUS: "passed"}
    )
    assert not function.promote(dev, "1", "staging", "a-staging")

    # WHEN v1 is promoted to prod with the wrong password
    retried = function.promote(dev, "1", "prod", "a-prod")
    # THEN the server refused it and the record is left for the queue to retry; nothing is in prod
    assert retried == ["msg-0"]
    assert function.queue.dead_letters == []
    with temporary_environment(
        {"MLFLOW_TRACKING_USERNAME": AUTH_ADMIN, "MLFLOW_TRACKING_PASSWORD": auth_prod_server["admin_password"]}
    ):
        assert MlflowClient(url).search_model_versions(f"name='{prod}'") == []

    # WHEN the secret is rotated to the right password and the request is retried
    right = json.dumps({"username": PROMOTER, "password": auth_prod_server[PROMOTER]})
    secrets_manager.put_secret_value(SecretId=arn, SecretString=right)
    assert not function.promote(dev, "1", "prod", "a-prod")
    # THEN prod has the version and its champion, made by the promoter (the creator MLflow's auth makes MANAGE)
    with temporary_environment(
        {"MLFLOW_TRACKING_USERNAME": AUTH_ADMIN, "MLFLOW_TRACKING_PASSWORD": auth_prod_server["admin_password"]}
    ):
        admin = MlflowClient(url)
        [released] = admin.search_model_versions(f"name='{prod}'")
        assert alias_holder(admin, prod, "champion") == released.version
        permission = AuthServiceClient(url).get_user_permission(PROMOTER, RESOURCE_TYPE_REGISTERED_MODEL, prod)
        assert permission.permission == "MANAGE"
    # AND the rung's credentials never went into this process's environment, which the functions' own registry reads
    assert not {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} & set(os.environ)
    assert [e.to_environment for e in function.events.published if isinstance(e, ModelVersionPromoted)] == [
        "staging",
        "prod",
    ]
