"""Validation end to end in the sandbox, with real scikit-learn models and metrics logged by MLflow.

The session sandbox validates with tests/integration/policies/: `gate-*` models must reach accuracy 0.8,
not be worse than the champion, carry a signature, an environment file and the run tag `data.version`;
`gate-requirements` must ship requirements.txt.
"""

from __future__ import annotations

import json
import re
import uuid

import mlflow
import mlflow.sklearn
import pytest
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from functions.domain.tags import DEFAULT_MODEL_NAME_TAG, TAG_STATUS
from functions.domain.validation import verdict_record
from ops.__main__ import main as ops_main

VALIDATED = "Model Version Validated"


@pytest.fixture(scope="module")
def data():
    features, labels = load_breast_cancer(return_X_y=True)
    return train_test_split(features, labels, test_size=0.3, random_state=0)


def train_and_log(sandbox, model_name: str, data, *, columns: int, data_version: str | None = "v7", dummy=False):  # type: ignore[no-untyped-def]
    """Train on the first `columns` features, log accuracy and the model into the sandbox bucket."""
    x_train, x_test, y_train, y_test = data
    estimator = DummyClassifier(strategy="most_frequent") if dummy else LogisticRegression(max_iter=5000)
    model = estimator.fit(x_train[:, :columns], y_train)
    accuracy = float(model.score(x_test[:, :columns], y_test))
    mlflow.set_tracking_uri(sandbox.mlflow_tracking_uri)
    name = f"{model_name}-{uuid.uuid4().hex[:6]}"
    experiment_id = mlflow.create_experiment(name, artifact_location=f"{sandbox.artifact_root}/{name}")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        if data_version:
            mlflow.set_tag("data.version", data_version)
        mlflow.log_metric("accuracy", accuracy)
        signature = infer_signature(x_test[:5, :columns], model.predict(x_test[:5, :columns]))
        mlflow.sklearn.log_model(model, name="model", signature=signature, tags={DEFAULT_MODEL_NAME_TAG: model_name})
    return accuracy, run.info.run_id


def verdict_of(sandbox, model_name: str, version: str) -> dict:  # type: ignore[no-untyped-def]
    [event] = [
        e for e in sandbox.observed_events(VALIDATED, model_name=model_name) if e["detail"]["version"] == version
    ]
    return event["detail"]


def test_a_good_model_passes_with_tags_and_event(sandbox, mlflow_client, wait_quiet, data):
    # GIVEN a model that meets every rule of its policy
    accuracy, run_id = train_and_log(sandbox, "gate-pass", data, columns=30)
    # WHEN the pipeline settles
    wait_quiet(timeout=90)
    # THEN its verdict is passed, on the version's tags and in the event
    version = mlflow_client.get_model_version("gate-pass", "1")
    assert version.tags[TAG_STATUS] == "passed"
    record = verdict_record(version.tags)
    assert record["reasons"] == "all checks passed"
    assert record["policy"] == "gate-pass.yaml"
    assert len(record["policy_sha256"]) == 64
    assert record["validated_at"]
    detail = verdict_of(sandbox, "gate-pass", "1")
    assert (detail["status"], detail["reasons"], detail["run_id"]) == ("passed", [], run_id)
    assert detail["policy"].startswith("gate-pass.yaml@sha256:")
    checks = {c["name"]: c for c in detail["checks"]}
    assert checks["metric:accuracy:min"]["observed"] == pytest.approx(accuracy)
    assert checks["metric:accuracy:min"]["threshold"] == 0.8
    assert checks["metric:accuracy:min"]["source"] in {"logged_model", "run"}
    assert checks["compare:champion:accuracy"]["skipped"] is True
    assert checks["artifact:signature"]["passed"] is True
    assert checks["lineage:run_tag:data.version"]["observed"] == "v7"
    # AND the correlation id of the upload runs through both events
    [registered] = sandbox.observed_events("Model Version Registered", model_name="gate-pass")
    assert detail["correlation_id"] == registered["detail"]["correlation_id"]


def test_a_model_below_the_threshold_fails(sandbox, mlflow_client, wait_quiet, data):
    # GIVEN a model that always predicts the majority class: accuracy well below 0.8
    accuracy, _ = train_and_log(sandbox, "gate-threshold", data, columns=30, data_version="v1", dummy=True)
    assert accuracy < 0.8
    wait_quiet(timeout=90)
    # THEN it is registered but failed, with the reason
    version = mlflow_client.get_model_version("gate-threshold", "1")
    assert version.tags[TAG_STATUS] == "failed"
    detail = verdict_of(sandbox, "gate-threshold", "1")
    assert detail["status"] == "failed"
    assert detail["reasons"] == [f"accuracy {accuracy:g} is below the minimum 0.8"]


def test_a_model_that_does_not_beat_the_champion_fails(sandbox, mlflow_client, wait_quiet, data):
    # GIVEN a strong version 1 that holds the champion alias
    strong, _ = train_and_log(sandbox, "gate-champion", data, columns=30)
    wait_quiet(timeout=90)
    mlflow_client.set_registered_model_alias("gate-champion", "champion", "1")
    # WHEN a weaker version 2 (still above the 0.8 threshold) is logged
    weak, _ = train_and_log(sandbox, "gate-champion", data, columns=1)
    assert 0.8 <= weak < strong
    wait_quiet(timeout=90)
    # THEN version 2 fails on the comparison with the champion
    assert mlflow_client.get_model_version("gate-champion", "2").tags[TAG_STATUS] == "failed"
    detail = verdict_of(sandbox, "gate-champion", "2")
    compare = {c["name"]: c for c in detail["checks"]}["compare:champion:accuracy"]
    assert compare["passed"] is False
    assert (compare["observed"], compare["threshold"]) == (pytest.approx(weak), pytest.approx(strong))
    assert "does not beat champion v1" in compare["message"]


def test_a_model_without_requirements_txt_fails(sandbox, mlflow_client, wait_quiet, sklearn_model_dir, tmp_path):
    # GIVEN a saved model whose requirements.txt was left out of the upload
    prefix = "models/gate-requirements/1/"
    for path in sorted(sklearn_model_dir.rglob("*"), key=lambda p: p.name == "MLmodel"):
        if path.is_file() and path.name != "requirements.txt":
            key = f"{prefix}{path.relative_to(sklearn_model_dir).as_posix()}"
            sandbox.client("s3").upload_file(str(path), sandbox.bucket, key)
    # WHEN the pipeline settles
    wait_quiet(timeout=90)
    # THEN the version is registered and failed for the missing file
    version = mlflow_client.get_model_version("gate-requirements", "1")
    assert version.tags[TAG_STATUS] == "failed"
    assert verdict_record(version.tags)["reasons"] == "missing requirements.txt: cannot be rebuilt"


def test_re_validation_after_the_fact_changes_nothing_more(sandbox, mlflow_client, wait_quiet, data, capsys):
    # GIVEN a validated version
    train_and_log(sandbox, "gate-pass", data, columns=30)
    wait_quiet(timeout=90)
    version = max(mlflow_client.search_model_versions("name='gate-pass'"), key=lambda v: int(v.version)).version
    before = mlflow_client.get_model_version("gate-pass", version).tags
    # WHEN the operator asks for it again, twice, with the ops command (Validation Requested events)
    for _ in range(2):
        assert ops_main(["--sandbox", json.dumps(sandbox.info()), "validate", "gate-pass", version, "--by", "t"]) == 0
    wait_quiet(timeout=60)
    # THEN two more verdicts are emitted, and the tags are exactly as before
    verdicts = [
        e for e in sandbox.observed_events(VALIDATED, model_name="gate-pass") if e["detail"]["version"] == version
    ]
    assert len(verdicts) == 3
    assert mlflow_client.get_model_version("gate-pass", version).tags == before
    # AND the ops command shows the verdict
    assert ops_main(["--sandbox", json.dumps(sandbox.info()), "verdict", "gate-pass", version, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (shown[TAG_STATUS], shown["version"]) == ("passed", version)
    # AND, for a person, with the verdict's fields one per line
    assert ops_main(["--sandbox", json.dumps(sandbox.info()), "verdict", "gate-pass", version]) == 0
    printed = capsys.readouterr().out
    assert f"gate-pass v{version}: passed" in printed
    assert re.search(r"^  reasons +all checks passed$", printed, re.MULTILINE)
    assert re.search(r"^  policy +gate-pass.yaml$", printed, re.MULTILINE)


def test_ops_refuses_an_unknown_stack_with_a_clear_error(capsys):
    # GIVEN the emulator's CloudFormation (AWS_ENDPOINT_URL points at it in this suite) has no such stack
    # WHEN the operator targets it
    code = ops_main(["--stack", "NoSuchStack", "validate", "m", "1"])
    # THEN the command fails with the stack's name and the reason
    assert code == 2
    assert "stack 'NoSuchStack'" in capsys.readouterr().err


def test_a_diverged_run_whose_metrics_are_all_nan_fails_the_default_policy_and_gets_no_alias(
    sandbox, mlflow_client, wait_quiet, data
):
    # GIVEN a model under the default policy (which names no metric), logged by a run whose metrics are all NaN
    x_train, x_test, y_train, _ = data
    model = LogisticRegression(max_iter=5000).fit(x_train[:, :5], y_train)
    model_name = f"diverged-{uuid.uuid4().hex[:6]}"
    mlflow.set_tracking_uri(sandbox.mlflow_tracking_uri)
    experiment_id = mlflow.create_experiment(model_name, artifact_location=f"{sandbox.artifact_root}/{model_name}")
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_metrics({"accuracy": float("nan"), "loss": float("nan")})
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x_test[:5, :5], model.predict(x_test[:5, :5])),
            tags={DEFAULT_MODEL_NAME_TAG: model_name},
        )
    # WHEN the pipeline settles
    wait_quiet(timeout=90)
    # THEN the version is registered but failed, each NaN metric named in the reasons
    version = mlflow_client.get_model_version(model_name, "1")
    assert version.tags[TAG_STATUS] == "failed"
    detail = verdict_of(sandbox, model_name, "1")
    assert detail["status"] == "failed"
    assert {reason.split(" is ")[0] for reason in detail["reasons"]} == {"metric accuracy", "metric loss"}
    assert all("not a finite number" in reason for reason in detail["reasons"])
    # AND no alias points at it (the default policy would have made a passing version challenger)
    assert mlflow_client.get_registered_model(model_name).aliases == {}
