"""Registration end to end in the sandbox: real MLflow server, moto's S3/EventBridge/SQS/DynamoDB, real worker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.domain.tags import DEFAULT_MODEL_NAME_TAG, REGISTERED_BY, REGISTERED_BY_TAG, origin_tag
from tests.integration.sandboxes import wait_for_log_line

REGISTERED = "Model Version Registered"


def versions_of(client, name: str) -> list:  # type: ignore[no-untyped-def]
    return sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))


def wait_for(condition, *, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def s3_event_for(sandbox, key: str) -> dict:  # type: ignore[no-untyped-def]
    """The `Object Created` event AWS would send for an object already in the sandbox bucket."""
    head = sandbox.client("s3").head_object(Bucket=sandbox.bucket, Key=key)
    return {
        "version": "0",
        "id": "5b0a3b3e-1111-2222-3333-444455556666",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": head["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{sandbox.bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": sandbox.bucket},
            "object": {
                "key": key,
                "size": head["ContentLength"],
                "etag": head["ETag"].strip('"'),
                "version-id": head.get("VersionId"),
                "sequencer": "00617F08299329D189",
            },
            "request-id": "R1",
            "requester": "123456789012",
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def put_on_default_bus(sandbox, event: dict) -> None:  # type: ignore[no-untyped-def]
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event["resources"],
        "EventBusName": "default",
    }
    response = sandbox.client("events").put_events(Entries=[entry])
    assert response["FailedEntryCount"] == 0


@pytest.fixture(scope="module")
def iris_model():
    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(features, labels), features


def test_log_model_into_the_bucket_gets_registered_and_loads(
    sandbox, mlflow_client, model_name, wait_quiet, iris_model
):
    # GIVEN an experiment whose artifacts live in the sandbox bucket, and a model logged with the name tag
    model, features = iris_model
    mlflow.set_tracking_uri(sandbox.mlflow_tracking_uri)
    experiment_id = mlflow.create_experiment(model_name, artifact_location=f"{sandbox.artifact_root}/{model_name}")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("accuracy", 0.97)
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=features[:2], tags={DEFAULT_MODEL_NAME_TAG: model_name}
        )
    # WHEN the pipeline settles
    wait_quiet(timeout=90)
    # THEN exactly one version exists, sourced from the logged model's directory and linked to run and model
    [version] = versions_of(mlflow_client, model_name)
    assert version.source == mlflow_client.get_logged_model(info.model_id).artifact_location
    assert version.run_id == run.info.run_id
    assert version.tags[REGISTERED_BY_TAG] == REGISTERED_BY
    assert version.tags[origin_tag("key")].endswith(f"/models/{info.model_id}/artifacts/MLmodel")
    # AND a Model Version Registered event was emitted with the contract fields
    [event] = sandbox.observed_events(REGISTERED, model_name=model_name)
    assert event["source"] == "registry-autopilot"
    assert event["detail"]["version"] == version.version
    assert event["detail"]["model_id"] == info.model_id
    assert event["detail"]["run_id"] == run.info.run_id
    assert event["detail"]["correlation_id"] == version.tags[origin_tag("correlation_id")]
    # AND the registered model loads and predicts
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/{version.version}")
    predictions = loaded.predict(features[:5])
    assert np.array_equal(predictions, model.predict(features[:5]))


def test_plain_upload_delivered_three_times_gives_one_version(
    sandbox, mlflow_client, model_name, wait_quiet, upload_model
):
    # GIVEN a plain upload that was registered
    prefix = upload_model(model_name, "2026-11-20")
    wait_quiet(timeout=60)
    assert len(versions_of(mlflow_client, model_name)) == 1
    # WHEN its event is delivered three more times
    event = s3_event_for(sandbox, f"{prefix}MLmodel")
    for _ in range(3):
        put_on_default_bus(sandbox, event)
    wait_quiet(timeout=60)
    # THEN there is still exactly one version
    [version] = versions_of(mlflow_client, model_name)
    assert version.source == f"s3://{sandbox.bucket}/{prefix.rstrip('/')}"
    assert sandbox.dlq_messages("register") == [] or all(
        (m.event or {}).get("detail", {}).get("object", {}).get("key", "").find(model_name) < 0
        for m in sandbox.dlq_messages("register")
    )


def test_mlmodel_before_its_weights_registers_only_once_complete(
    sandbox, mlflow_client, model_name, wait_quiet, sklearn_model_dir: Path
):
    # GIVEN the MLmodel of a plain upload lands before its weights
    prefix = f"models/{model_name}/1/"
    sandbox.put_object(f"{prefix}MLmodel", (sklearn_model_dir / "MLmodel").read_bytes())
    # WHEN the register worker has seen it and put it off
    wait_for_log_line(sandbox, message="not ready: re-enqueued", key=f"{prefix}MLmodel")
    # THEN nothing is registered yet, and nothing is dead-lettered
    assert versions_of(mlflow_client, model_name) == []
    # WHEN the rest of the model arrives
    for path in sorted(sklearn_model_dir.rglob("*")):
        if path.is_file() and path.name != "MLmodel":
            key = f"{prefix}{path.relative_to(sklearn_model_dir).as_posix()}"
            sandbox.client("s3").upload_file(str(path), sandbox.bucket, key)
    # THEN the deferred message comes back and registers exactly one version
    wait_for(lambda: versions_of(mlflow_client, model_name), timeout=60, what="the deferred registration")
    wait_quiet(timeout=60)
    assert len(versions_of(mlflow_client, model_name)) == 1
    assert not [m for m in sandbox.dlq_messages("register") if model_name in m.body]


def test_log_model_with_registered_model_name_is_not_duplicated(
    sandbox, mlflow_client, model_name, wait_quiet, iris_model
):
    # GIVEN a training job that registers the model itself with log_model(registered_model_name=...)
    model, features = iris_model
    mlflow.set_tracking_uri(sandbox.mlflow_tracking_uri)
    experiment_id = mlflow.create_experiment(model_name, artifact_location=f"{sandbox.artifact_root}/{model_name}")
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.sklearn.log_model(model, name="model", registered_model_name=model_name)
    # WHEN the pipeline sees the upload
    wait_quiet(timeout=90)
    # THEN there is still one version, and it is announced as already registered
    [version] = versions_of(mlflow_client, model_name)
    assert version.version == "1"
    [event] = sandbox.observed_events(REGISTERED, model_name=model_name)
    assert event["detail"]["already_registered"] is True


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"flavors: [not, closed", "malformed_mlmodel"),
        (b"artifact_path: x\n", "malformed_mlmodel"),
        (b"", "malformed_mlmodel"),
    ],
)
def test_bad_mlmodel_is_dead_lettered_with_its_reason(sandbox, mlflow_client, model_name, wait_quiet, content, reason):
    # GIVEN an MLmodel that is not YAML, has no flavors, or is empty
    key = f"models/{model_name}/1/MLmodel"
    sandbox.put_object(key, content)
    # WHEN the pipeline settles
    wait_quiet(timeout=60)
    # THEN nothing is registered and the message is in the dead-letter queue with its reason
    assert versions_of(mlflow_client, model_name) == []
    [dead] = [m for m in sandbox.dlq_messages("register") if key in m.body]
    assert dead.reason == reason
    assert dead.error
