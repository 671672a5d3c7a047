"""The registry adapter against the backends no server of which runs here, at the HTTP boundary.

The real MLflow client (and its Databricks SDK auth, its UC artifact copy, the SageMaker plugin's SigV4 signing, its
TLS verification) talks to `tests/recorded_http.py` on 127.0.0.1, which answers with the recorded bodies in
`tests/events/registry/` and keeps every request. Artifacts live in the session sandbox's S3 (moto), in buckets of
their own, so nothing here triggers the pipeline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import mlflow.sklearn
import pytest
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.adapters.mlflow_registry import MlflowRegistry
from functions.adapters.registry_factory import connect_registry
from functions.adapters.unity_catalog import UnityCatalogRegistry, uc_tag_key
from functions.domain.errors import Rejected, Unavailable
from functions.domain.tags import (
    IDENTITY_TAG,
    REGISTERED_BY,
    REGISTERED_BY_TAG,
    TAG_STATUS,
    history_tag,
    origin_tag,
    pending_tag,
)
from functions.project import ROOT
from stacks.constructs.mlflow_access import SAGEMAKER_MLFLOW_REGISTER_ACTIONS
from tests.recorded_http import RecordedRegistry, RecordedRequest, recording

REPO_ROOT = ROOT
SAGEMAKER_PLUGIN = REPO_ROOT / ".venv" / "plugins" / "sagemaker-mlflow"
UC = "/api/2.0/mlflow/unity-catalog"
OSS = "/api/2.0/mlflow"
MODEL = "main.ml.churn"
SECRET_TOKEN = f"dapi-{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
def restore_environ() -> Iterator[None]:
    """The adapter sets MLflow's and the Databricks SDK's variables in os.environ, as it does in Lambda."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RecordedRegistry]:
    registry = RecordedRegistry(tls=True)
    registry.start(tmp_path)
    # The Databricks SDK and MLflow verify TLS with requests: trust the throw-away CA, nothing else changes.
    os.environ["REQUESTS_CA_BUNDLE"] = str(registry.ca_path)
    yield registry
    registry.stop()


def _databricks_registry(server: RecordedRegistry) -> MlflowRegistry:
    secret = json.dumps({"host": server.url, "token": SECRET_TOKEN})
    return connect_registry(
        tracking_uri="databricks",
        registry_uri="databricks-uc",
        credentials_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:databricks-AbCdEf",
        read_secret=lambda arn, force=False: secret,
    )


def _uc_version_answer(name: str) -> object:
    def answer(request: RecordedRequest) -> tuple[int, dict]:
        body = recording(name)
        body["model_version"]["source"] = request.json().get("source", "")
        return 200, body

    return answer


def test_unity_catalog_finds_the_earlier_version_by_its_identity_tag(server: RecordedRegistry):
    # GIVEN Unity Catalog holding version 2 (copied into UC storage, created after the upload, tagged with the
    # upload's identity) and version 1 (older than the upload)
    identity = "s3://artifacts/models/main.ml.churn/1/MLmodel#3HL4kqtJlcpXroDTDmJ"
    version = recording("uc_get_model_version.json")
    version["model_version"]["tags"][1]["value"] = identity
    server.routes = {
        ("GET", f"{UC}/model-versions/search"): (200, recording("uc_search_model_versions.json")),
        ("GET", f"{UC}/model-versions/get"): (200, version),
    }
    registry = _databricks_registry(server)
    uploaded_at = datetime.fromtimestamp(1795699990, tz=UTC)

    # WHEN the registrar asks for a version of this upload
    found = registry.find_version(MODEL, ["s3://artifacts/models/main.ml.churn/1"], identity, not_before=uploaded_at)

    # THEN version 2 is found through its identity tag, after a name-only search (all UC allows), with one read
    # (version 1 predates the upload), authenticated with the secret's token; its tags read back with dotted keys
    assert isinstance(registry, UnityCatalogRegistry)
    assert found is not None
    assert found.version == "2"
    assert found.tags == {REGISTERED_BY_TAG: REGISTERED_BY, IDENTITY_TAG: identity}
    [search] = server.calls(f"{UC}/model-versions/search")
    assert search.query["filter"] == [f"name='{MODEL}'"]
    assert [r.query["version"] for r in server.calls(f"{UC}/model-versions/get")] == [["2"]]
    assert search.header("Authorization") == f"Bearer {SECRET_TOKEN}"
    assert uc_tag_key(IDENTITY_TAG) == "origin__identity"


def test_unity_catalog_finds_nothing_for_a_new_upload(server: RecordedRegistry):
    # GIVEN versions whose identity tags belong to other uploads
    server.routes = {
        ("GET", f"{UC}/model-versions/search"): (200, recording("uc_search_model_versions.json")),
        ("GET", f"{UC}/model-versions/get"): (200, recording("uc_get_model_version.json")),
    }
    registry = _databricks_registry(server)

    # WHEN a new upload is looked up
    found = registry.find_version(MODEL, ["s3://artifacts/models/main.ml.churn/9"], "s3://artifacts/x#new")

    # THEN nothing is found (and the registrar will create a version)
    assert found is None


def test_unity_catalog_registration_copies_the_model_and_tags_it_as_uc_allows(
    server: RecordedRegistry, sandbox, tmp_path: Path
):
    # GIVEN a signed scikit-learn model in the artifact bucket (the sandbox's S3), and UC storage in another bucket
    s3 = sandbox.client("s3")
    artifacts, uc_storage = f"uc-src-{uuid.uuid4().hex[:8]}", "uc-managed-storage"
    s3.create_bucket(Bucket=artifacts)
    if uc_storage not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=uc_storage)
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(features, labels)
    local = tmp_path / "model"
    mlflow.sklearn.save_model(model, local, signature=infer_signature(features, model.predict(features)))
    prefix = f"models/{MODEL}/1"
    for path in local.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), artifacts, f"{prefix}/{path.relative_to(local).as_posix()}")
    server.routes = {
        ("POST", f"{UC}/model-versions/create"): _uc_version_answer("uc_create_model_version.json"),
        ("POST", f"{UC}/model-versions/generate-temporary-credentials"): (
            200,
            recording("uc_generate_temporary_credentials.json"),
        ),
        ("POST", f"{UC}/model-versions/finalize"): (200, recording("uc_finalize_model_version.json")),
        ("GET", f"{UC}/registered-models:is-databricks-sdk-models-artifact-repository-enabled"): (
            200,
            recording("uc_sdk_repository_disabled.json"),
        ),
    }
    registry = _databricks_registry(server)
    identity = f"s3://{artifacts}/{prefix}/MLmodel#v1"

    # WHEN the version is created
    created = registry.create_version(
        MODEL,
        f"s3://{artifacts}/{prefix}",
        run_id=None,
        model_id=None,
        tags={IDENTITY_TAG: identity, REGISTERED_BY_TAG: REGISTERED_BY, origin_tag("key"): "k" * 1500},
    )

    # THEN UC got the source and tags with UC-legal keys (no dots),
    # the model files were copied into the version's storage location, and the version was finalized
    assert created.version == "3"
    [create] = server.calls(f"{UC}/model-versions/create")
    tags = {tag["key"]: tag["value"] for tag in create.json()["tags"]}
    assert tags["origin__identity"] == identity
    assert tags[REGISTERED_BY_TAG] == REGISTERED_BY
    assert tags["origin__key"] == "k" * 1500  # passed unchanged: UC would refuse it loudly, never a cut value
    assert create.json()["source"] == f"s3://{artifacts}/{prefix}"
    copied = {o["Key"] for o in s3.list_objects_v2(Bucket=uc_storage, Prefix="models/0f3a/versions/3/")["Contents"]}
    assert "models/0f3a/versions/3/MLmodel" in copied
    assert len(copied) == len([p for p in local.rglob("*") if p.is_file()])
    assert len(server.calls(f"{UC}/model-versions/finalize")) == 1


def test_unity_catalog_tags_of_validation_and_promotion_round_trip_with_dotted_keys(server: RecordedRegistry):
    # GIVEN UC holding a registered model whose alias history tag was written by this adapter
    history = '[{"version":"3","verdict":"c-1"}]'
    server.routes = {
        ("POST", f"{UC}/model-versions/set-tag"): (200, {}),
        ("POST", f"{UC}/registered-models/set-tag"): (200, {}),
        ("DELETE", f"{UC}/model-versions/delete-tag"): (200, {}),
        ("GET", f"{UC}/registered-models/get"): (
            200,
            {
                "registered_model": {
                    "name": MODEL,
                    "tags": [{"key": "autopilot__alias_history__champion", "value": history}],
                    "aliases": [{"alias": "champion", "version": "3"}],
                }
            },
        ),
    }
    registry = _databricks_registry(server)

    # WHEN the validate and aliases routes write and read their tags
    registry.set_version_tags(MODEL, "3", {TAG_STATUS: "passed"})
    registry.set_model_tag(MODEL, history_tag("champion"), history)
    registry.delete_version_tag(MODEL, "3", pending_tag("champion"))
    model = registry.get_model(MODEL)

    # THEN UC only ever sees keys without dots, and the domain gets its dotted keys back
    written = [r.json()["key"] for r in server.calls(f"{UC}/model-versions/set-tag")]
    written += [r.json()["key"] for r in server.calls(f"{UC}/registered-models/set-tag")]
    written += [r.json()["key"] for r in server.calls(f"{UC}/model-versions/delete-tag")]
    assert written == ["validation__status", "autopilot__alias_history__champion", "approval__pending__champion"]
    assert model is not None
    assert (model.tags, model.aliases) == ({history_tag("champion"): history}, {"champion": "3"})
    # AND a policy that mirrors aliases to stages is refused clearly: UC has no stages
    with pytest.raises(Rejected, match=r"Unity Catalog has no stages") as refused:
        registry.transition_stage(MODEL, "3", "Production")
    assert refused.value.reason == "stages_unsupported"


def test_sagemaker_requests_are_signed_for_the_tracking_server_and_allowed_by_the_stack(tmp_path: Path):
    # GIVEN a SageMaker tracking server ARN served by the recorded registry, and the plugin on the path
    if not (SAGEMAKER_PLUGIN / "sagemaker_mlflow").is_dir():
        pytest.fail(f"{SAGEMAKER_PLUGIN} is missing: run `make deps` (it installs the SageMaker plugin there)")
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/main"
    created = recording("oss_create_model_version.json")
    server = RecordedRegistry(
        routes={
            ("GET", f"{OSS}/runs/get"): (200, recording("oss_get_run.json")),
            ("GET", f"{OSS}/logged-models/m-0123456789abcdef0123456789abcdef"): (
                200,
                recording("oss_get_logged_model.json"),
            ),
            ("GET", f"{OSS}/model-versions/search"): (200, recording("oss_search_model_versions_empty.json")),
            ("POST", f"{OSS}/model-versions/create"): (200, created),
        }
    ).start(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(SAGEMAKER_PLUGIN)]),
        "MLFLOW_TRACKING_URI": arn,
        "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT": server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        # WHEN the adapter makes the register route's calls
        result = subprocess.run(
            [sys.executable, "-m", "tests.integration.sagemaker_client"],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        server.stop()

    # THEN every call succeeded, SigV4-signed by the role's credentials for sagemaker-mlflow in the ARN's region and
    # addressed to that tracking server
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {
        "registry": "MlflowRegistry",
        "run_experiment": "7",
        "logged_model_status": "READY",
        "found": False,
        "created_version": "1",
    }
    assert server.requests
    for request in server.requests:
        assert re.match(
            r"AWS4-HMAC-SHA256 Credential=testing/\d{8}/eu-west-1/sagemaker-mlflow/aws4_request",
            request.header("Authorization") or "",
        )
        assert request.header("x-mlflow-sm-tracking-server-arn") == arn
    # AND each REST call maps to an action the stack grants the register route on the tracking server
    actions = {
        f"{OSS}/runs/get": "GetRun",
        f"{OSS}/logged-models/m-0123456789abcdef0123456789abcdef": "GetLoggedModel",
        f"{OSS}/model-versions/search": "SearchModelVersions",
        f"{OSS}/model-versions/create": "CreateModelVersion",
    }
    assert {actions[r.path] for r in server.requests} == set(actions.values())
    assert {f"sagemaker-mlflow:{a}" for a in actions.values()} <= set(SAGEMAKER_MLFLOW_REGISTER_ACTIONS)
    assert "sagemaker-mlflow:CreateRegisteredModel" in SAGEMAKER_MLFLOW_REGISTER_ACTIONS


def test_sigv4_flag_signs_requests_for_api_gateway(tmp_path: Path):
    # GIVEN an MLflow server behind API Gateway with IAM auth (MLFLOW_TRACKING_AWS_SIGV4=true, as the stack sets)
    server = RecordedRegistry(
        routes={("GET", f"{OSS}/model-versions/search"): (200, recording("oss_search_model_versions_empty.json"))}
    ).start(tmp_path)
    os.environ.update(
        {
            "MLFLOW_TRACKING_AWS_SIGV4": "true",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    try:
        # WHEN the adapter searches the registry
        found = connect_registry(tracking_uri=server.url).find_version("churn", ["s3://b/models/churn/1"], "id")
    finally:
        server.stop()

    # THEN the request carries a SigV4 signature for execute-api (what the role's execute-api:Invoke allows)
    assert found is None
    [request] = server.requests
    assert re.match(
        r"AWS4-HMAC-SHA256 Credential=testing/\d{8}/eu-west-1/execute-api/aws4_request",
        request.header("Authorization") or "",
    )


def test_tls_is_verified_by_default_and_the_ca_bundle_makes_it_pass(tmp_path: Path):
    # GIVEN an MLflow server with a certificate from a private CA
    server = RecordedRegistry(
        routes={("GET", f"{OSS}/model-versions/search"): (200, recording("oss_search_model_versions_empty.json"))},
        tls=True,
    ).start(tmp_path)
    try:
        # WHEN the adapter calls it without the CA bundle
        # THEN verification fails, as a retryable dependency failure naming TLS
        with pytest.raises(Unavailable, match=r"(?i)ssl|certificate") as refused:
            connect_registry(tracking_uri=server.url).find_version("churn", ["s3://b/models/churn/1"], "id")
        assert refused.value.reason == "registry_unavailable"

        # WHEN MLFLOW_TRACKING_SERVER_CERT_PATH names the CA (what mlflowCaBundle sets)
        os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"] = str(server.ca_path)
        found = connect_registry(tracking_uri=server.url).find_version("churn", ["s3://b/models/churn/1"], "id")
    finally:
        server.stop()

    # THEN the same call succeeds
    assert found is None
    assert len(server.calls(f"{OSS}/model-versions/search")) == 1


def test_refused_credentials_are_a_distinct_reason_and_the_secret_is_read_again(tmp_path: Path):
    # GIVEN a registry that refuses the token (401) and a secret store that counts its reads
    server = RecordedRegistry(
        routes={("GET", f"{OSS}/model-versions/search"): (401, {"error_code": "UNAUTHENTICATED", "message": "bad"})}
    ).start(tmp_path)
    reads: list[bool] = []

    def read_secret(arn: str, force: bool = False) -> str:
        reads.append(force)
        return json.dumps({"token": SECRET_TOKEN})

    registry = connect_registry(tracking_uri=server.url, credentials_secret_arn="arn:secret", read_secret=read_secret)
    try:
        # WHEN two attempts are refused
        for _ in range(2):
            with pytest.raises(Unavailable, match=r"MLflow refused search_model_versions \(UNAUTHENTICATED\)") as error:
                registry.find_version("churn", ["s3://b/models/churn/1"], "id")
            # THEN each is the distinct reason registry_auth_failed
            assert error.value.reason == "registry_auth_failed"
    finally:
        server.stop()

    # AND the second attempt read the secret again, bypassing the cache (a rotated secret takes effect at once),
    # while the token went only into the Authorization header
    assert reads == [False, True]
    assert all(r.header("Authorization") == f"Bearer {SECRET_TOKEN}" for r in server.requests)
