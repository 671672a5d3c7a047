"""MLflow workspaces against a real server with them on (`mlflow server --enable-workspaces`, SQLite store).

The session sandbox's MLflow server has workspaces off, so this module starts its own (`mlflow_servers.mlflow_server`)
and creates workspace `team-a` in it. The register, validate and aliases handlers run here, in this process, with
the real MLflow adapter on that server and the real S3 adapter on the sandbox's moto (a bucket of this module's own,
with no notifications, so the sandbox's workers never see it). Each route's event is handed to the next route as the
SQS record EventBridge would deliver (the envelope of `tests/events/model_version_registered.json`), so the
`workspace` field goes through the event contract's parsing on the way. The whole pipeline on a second server (a
second sandbox) would prove no more about workspaces and would cost a minute.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.utils.workspace_context import WorkspaceContext
from pydantic import BaseModel

from functions.adapters.mlflow_registry import MlflowRegistry
from functions.adapters.s3_artifacts import S3ArtifactStore
from functions.domain.aliases import AliasKeeper
from functions.domain.errors import Rejected
from functions.domain.policy import load_policies
from functions.domain.registration import Registrar, RegistrationConfig
from functions.domain.tags import DEFAULT_MODEL_NAME_TAG, TAG_STATUS, WORKSPACE_TAG
from functions.domain.validation import EvidenceReader, Validator
from functions.handlers import aliases, register, validate
from functions.models.events import ModelAliasMoved, ModelVersionRegistered, ModelVersionValidated
from tests.builders import FakeContext, policies_folder, sqs_event
from tests.conftest import load_event
from tests.fakes import FakeEventPublisher, FakeQueue, OncePerIdentity
from tests.integration.mlflow_servers import mlflow_server

WORKSPACE = "team-a"
POLICY = """
metrics: {accuracy: {min: 0.5}}
promotion:
  aliases: {champion: always}
"""


@pytest.fixture(scope="module")
def workspace_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An MLflow server with workspaces on, holding workspace team-a (besides `default`)."""
    workdir = tmp_path_factory.mktemp("mlflow-workspaces")
    with mlflow_server(workdir, "MLflow server with workspaces", args=("--enable-workspaces",)) as url:
        MlflowClient(url).create_workspace(WORKSPACE)
        yield url


class Pipeline:
    """The three routes' handlers with real adapters; each route's events are kept for the next."""

    def __init__(self, url: str, bucket: str, policies: Path) -> None:
        self.registry = MlflowRegistry(MlflowClient(url))
        artifacts = S3ArtifactStore()
        self.events = FakeEventPublisher()
        registrar = Registrar(
            RegistrationConfig(bucket=bucket, artifact_root_prefix="mlflow", model_name_tag=DEFAULT_MODEL_NAME_TAG),
            registry=self.registry,
            artifacts=artifacts,
            events=self.events,
        )
        loaded = load_policies(policies)
        self.register = register.Dependencies(
            register_once=OncePerIdentity(register.registration_work(registrar)), queue=FakeQueue()
        )
        self.validate = validate.Dependencies(
            validator=Validator(loaded, bucket=bucket, registry=self.registry, artifacts=artifacts, events=self.events),
            queue=FakeQueue(),
        )
        reader = EvidenceReader(bucket=bucket, registry=self.registry, artifacts=artifacts)
        self.aliases = aliases.Dependencies(
            keeper=AliasKeeper(loaded, registry=self.registry, reader=reader, events=self.events), queue=FakeQueue()
        )

    def last(self, kind: type[BaseModel]) -> BaseModel:
        return [event for event in self.events.published if isinstance(event, kind)][-1]


def _on_the_bus(detail: BaseModel, detail_type: str) -> str:
    """The SQS body EventBridge delivers for a project event with this detail."""
    envelope = load_event("model_version_registered.json")
    return json.dumps({**envelope, "detail-type": detail_type, "detail": json.loads(detail.model_dump_json())})


def _uploaded(s3, bucket: str, key: str) -> str:  # type: ignore[no-untyped-def]
    """The `Object Created` event S3 (moto) sends for the object now at `key`."""
    head = s3.head_object(Bucket=bucket, Key=key)
    event = load_event("s3_object_created_moto.json")
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(
        {"key": key, "size": head["ContentLength"], "eTag": head["ETag"].strip('"'), "version-id": "null"}
    )
    event["time"] = head["LastModified"].isoformat().replace("+00:00", "Z")
    return json.dumps(event)


def test_an_upload_under_workspaces_team_a_is_registered_validated_and_promoted_in_team_a(
    sandbox, workspace_server, sklearn_model_dir, tmp_path
):
    # GIVEN workspace team-a on a server with workspaces on, a run there naming its registered model, and that
    # run's model uploaded under <root>/workspaces/team-a/<experiment>/<run>/artifacts/model/ (MLflow's layout)
    model = f"ws-{uuid.uuid4().hex[:8]}"
    client = MlflowClient(workspace_server)
    with WorkspaceContext(WORKSPACE):
        experiment = client.create_experiment(f"exp-{model}")
        run = client.create_run(experiment, tags={DEFAULT_MODEL_NAME_TAG: model})
        client.log_metric(run.info.run_id, "accuracy", 0.9)
    bucket = f"ws-{uuid.uuid4().hex[:12]}"
    s3 = sandbox.client("s3")
    s3.create_bucket(Bucket=bucket)
    model_dir = f"mlflow/workspaces/{WORKSPACE}/{experiment}/{run.info.run_id}/artifacts/model"
    files = sorted(path for path in sklearn_model_dir.rglob("*") if path.is_file() and path.name != "MLmodel")
    for path in [*files, sklearn_model_dir / "MLmodel"]:  # MLmodel last, as MLflow writes it
        s3.put_object(Bucket=bucket, Key=f"{model_dir}/{path.relative_to(sklearn_model_dir)}", Body=path.read_bytes())
    pipeline = Pipeline(workspace_server, bucket, policies_folder(tmp_path, default="{}\n", **{model: POLICY}))

    # WHEN the register route gets its Object Created event, then validate and aliases get the events that follow
    uploaded = _uploaded(s3, bucket, f"{model_dir}/MLmodel")
    assert register.lambda_handler(sqs_event(uploaded), FakeContext(), pipeline.register) == {"batchItemFailures": []}
    registered = pipeline.last(ModelVersionRegistered)
    body = _on_the_bus(registered, "Model Version Registered")
    assert validate.lambda_handler(sqs_event(body), FakeContext(), pipeline.validate) == {"batchItemFailures": []}
    validated = pipeline.last(ModelVersionValidated)
    body = _on_the_bus(validated, "Model Version Validated")
    assert aliases.lambda_handler(sqs_event(body), FakeContext(), pipeline.aliases) == {"batchItemFailures": []}

    # THEN the version is in team-a, linked to its run there, validated there and holding champion there ...
    assert registered.workspace == WORKSPACE
    assert isinstance(validated, ModelVersionValidated)
    assert (validated.workspace, validated.status) == (WORKSPACE, "passed")
    moved = pipeline.last(ModelAliasMoved)
    assert isinstance(moved, ModelAliasMoved)
    assert (moved.workspace, moved.alias) == (WORKSPACE, "champion")
    with WorkspaceContext(WORKSPACE):
        [version] = client.search_model_versions(f"name='{model}'")
        assert version.run_id == run.info.run_id
        assert version.tags[WORKSPACE_TAG] == WORKSPACE
        assert version.tags[TAG_STATUS] == "passed"
        assert client.get_registered_model(model).aliases == {"champion": version.version}
    # ... and not in the default workspace
    with WorkspaceContext("default"):
        assert client.search_model_versions(f"name='{model}'") == []
        assert client.search_registered_models(f"name='{model}'") == []


def test_a_workspace_the_server_does_not_have_is_dead_lettered_with_its_reason(sandbox, workspace_server, tmp_path):
    # GIVEN a validation request for a version in a workspace the server has no record of
    pipeline = Pipeline(workspace_server, "unused-bucket", policies_folder(tmp_path, default="{}\n"))
    body = _on_the_bus(
        ModelVersionValidated(
            model_name="m", version="1", source_uri="s3://b/k", correlation_id="c", status="passed", workspace="team-z"
        ),
        "Model Version Validated",
    )
    # WHEN the aliases route handles it
    aliases.lambda_handler(sqs_event(body), FakeContext(), pipeline.aliases)
    # THEN it is dead-lettered as an unknown workspace (not read as a missing version and dropped)
    queue = pipeline.aliases.queue
    assert isinstance(queue, FakeQueue)
    [letter] = queue.dead_letters
    assert letter["attributes"]["reason"] == "unknown_workspace"


def test_a_workspace_on_a_server_with_workspaces_off_is_refused_with_its_reason(mlflow_client):
    # GIVEN the session sandbox's MLflow server, which has workspaces off
    registry = MlflowRegistry(mlflow_client)
    # WHEN a version is read in workspace team-a
    with pytest.raises(Rejected) as refused, registry.in_workspace(WORKSPACE):
        registry.get_version("any-model", "1")
    # THEN it is refused (dead-lettered by the route) as workspaces off, not retried and not read as missing
    assert refused.value.reason == "workspaces_disabled"
