"""One sandbox for the whole integration session: moto + MLflow + a worker per route.

Fixtures:
- `sandbox` (session): the running `sandbox.Sandbox`; fails the session with its message if it
  cannot start.
- `sandbox_env` (autouse): points MLflow and boto3 clients of the test process at the sandbox
  (MLFLOW_TRACKING_URI, MLFLOW_S3_ENDPOINT_URL, AWS_ENDPOINT_URL, AWS_* credentials) for each test, and
  restores the environment afterwards.
- `mlflow_client` (session): an `MlflowClient` on the sandbox's tracking server.
- `model_name` (function): a registered-model name no other test uses (the sandbox is shared).
- `wait_quiet` (function): `wait_quiet(timeout=60)` waits until every queue is empty and every worker idle.
- `sklearn_model_dir` (session): a real scikit-learn model saved with `mlflow.sklearn.save_model`.
- `upload_model` (function): `upload_model(model_name, label="1") -> key prefix` uploads that model to
  `models/<model_name>/<label>/` (MLmodel last), which starts a registration.

The sandbox is shared: find your test's evidence by its model name or key, e.g.
`sandbox.observed_events("Model Version Registered", model_name=model_name)` (or `sandbox.wait_for_events(...)`,
which polls until they are there),
`[d for d in sandbox.dlq_messages("register") if d.key and d.key.startswith(f"models/{model_name}/")]`,
`mlflow_client.search_model_versions(f"name='{model_name}'")`.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox
from sandbox.command import function_settings
from tests.integration.sandboxes import started

TEST_POLICIES = Path(__file__).parent / "policies"
"""The session sandbox validates with these: the repository's default plus a few models' policies."""


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    running = Sandbox(
        workdir=tmp_path_factory.mktemp("sandbox"),
        # The policies, and `proof: smoke` proved with the sandbox's own packages (env_manager local), as `make sandbox`.
        function_settings=function_settings(TEST_POLICIES),
        progress=lambda message: print(f"sandbox: {message}", file=sys.stderr),
    )
    started(running)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def sandbox_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name, value in sandbox.client_environment().items():
        monkeypatch.setenv(name, value)
    return sandbox


@pytest.fixture(scope="session")
def mlflow_client(sandbox: Sandbox):  # type: ignore[no-untyped-def]
    return sandbox.mlflow_client()


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    test_name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40]
    return f"{test_name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def wait_quiet(sandbox: Sandbox) -> Callable[..., None]:
    def wait(timeout: float = 60.0) -> None:
        sandbox.wait_until_quiet(timeout=timeout)

    return wait


@pytest.fixture(scope="session")
def sklearn_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(features, labels)
    path = tmp_path_factory.mktemp("models") / "iris"
    mlflow.sklearn.save_model(model, path, pip_requirements=["scikit-learn"])
    return path


@pytest.fixture
def upload_model(sandbox: Sandbox, sklearn_model_dir: Path) -> Callable[..., str]:
    def upload(model_name: str, label: str = "1") -> str:
        prefix = f"models/{model_name}/{label}/"
        sandbox.upload_dir(sklearn_model_dir, prefix)
        return prefix

    return upload
