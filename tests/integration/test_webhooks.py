"""Registry-first registrations end to end: the sandbox's real MLflow server delivers signed webhooks to the
sandbox's function URL, which runs the real webhook handler (secret in Secrets Manager, delivery ids in DynamoDB,
events on the project bus, all on moto)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import mlflow
import mlflow.sklearn
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.domain.webhooks import sign

REGISTERED = "Model Version Registered"
VALIDATED = "Model Version Validated"


def wait_for(condition, *, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def webhook_log(sandbox, message: str) -> list[dict]:  # type: ignore[no-untyped-def]
    lines = []
    for text in sandbox.log_path("webhook").read_text(errors="replace").splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            if line.get("message") == message:
                lines.append(line)
    return lines


def signed_delivery(secret: str, payload: dict, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A delivery signed the way MLflow signs it (what a replaying or forging sender would send)."""
    body = json.dumps(payload).encode()
    delivery_id, stamp = str(uuid.uuid4()), str(timestamp if timestamp is not None else int(time.time()))
    headers = {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(secret, delivery_id, stamp, body),
    }
    return body, headers


def created_payload(name: str, version: str = "1", tags: dict | None = None) -> dict:
    return {
        "entity": "model_version",
        "action": "created",
        "timestamp": "2026-11-26T12:00:00+00:00",
        "data": {
            "name": name,
            "version": version,
            "source": f"s3://team-bucket/{name}",
            "run_id": None,
            "tags": tags or {},
            "description": None,
        },
    }


@pytest.fixture
def mlflow_webhook(sandbox, mlflow_client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A webhook in the sandbox's MLflow pointing at the sandbox's endpoint; deleted afterwards."""
    webhook = mlflow_client.create_webhook(
        name=f"autopilot-{uuid.uuid4().hex[:8]}",
        url=sandbox.webhook_url,
        events=["model_version.created"],
        secret=sandbox.webhook_secret(),
    )
    yield webhook.webhook_id
    mlflow_client.delete_webhook(webhook.webhook_id)
    time.sleep(1.5)  # the server caches its webhooks for 1 s in the sandbox: let later tests see none


def test_hand_registered_version_is_announced_through_the_signed_webhook_and_validated(
    sandbox, mlflow_client, mlflow_webhook, model_name
):
    # GIVEN a webhook from the real MLflow server to the sandbox's endpoint, and a model logged into the bucket with no
    # name for the register route to use (it waits for one)
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(features, labels)
    mlflow.set_tracking_uri(sandbox.mlflow_tracking_uri)
    experiment_id = mlflow.create_experiment(model_name, artifact_location=f"{sandbox.artifact_root}/{model_name}")
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_metric("accuracy", 0.97)
        logged = mlflow.sklearn.log_model(model, name="model", input_example=features[:2])

    # WHEN someone registers a version of it by hand in the registry
    mlflow_client.create_registered_model(model_name)
    version = mlflow_client.create_model_version(
        model_name, f"models:/{logged.model_id}", run_id=logged.run_id, model_id=logged.model_id, await_creation_for=0
    )

    # THEN the signed delivery is accepted and Model Version Registered is on the project bus (no artifact: it came
    # from the registry)
    def from_webhook() -> list[dict]:
        return [
            e for e in sandbox.observed_events(REGISTERED, model_name=model_name) if e["detail"]["artifact"] is None
        ]

    [event] = wait_for(from_webhook, timeout=30, what="the webhook's Model Version Registered")
    assert event["source"] == "registry-autopilot"
    assert event["detail"]["version"] == version.version
    assert event["detail"]["source_uri"] == f"models:/{logged.model_id}"
    assert event["detail"]["model_id"] == logged.model_id
    assert event["detail"]["already_registered"] is False
    [announced] = [
        line
        for line in webhook_log(sandbox, "model version registered in the registry: announced")
        if line.get("model_name") == model_name
    ]
    assert announced["delivery_id"]
    # AND the validate route validates the hand-registered version like an uploaded one
    validated = wait_for(
        lambda: [
            e
            for e in sandbox.observed_events(VALIDATED, model_name=model_name)
            if e["detail"]["correlation_id"] == event["detail"]["correlation_id"]
        ],
        timeout=60,
        what="the validation of the hand-registered version",
    )
    assert validated[0]["detail"]["status"] == "passed"


def test_versions_this_system_created_are_not_announced_twice(
    sandbox, mlflow_client, mlflow_webhook, model_name, wait_quiet, upload_model
):
    # GIVEN the webhook, and an upload the register route registers (tagged registered_by=registry-autopilot)
    upload_model(model_name)
    wait_quiet(timeout=60)
    wait_for(
        lambda: [
            line
            for line in webhook_log(sandbox, "webhook verified: nothing to announce")
            if line.get("reason") == "created_by_registry_autopilot" and line.get("subject") == f"{model_name}/1"
        ],
        timeout=30,
        what="the webhook delivery of the pipeline's own version",
    )

    # THEN the version was announced once, by the register route (with its artifact), not again by the webhook
    [event] = sandbox.observed_events(REGISTERED, model_name=model_name)
    assert event["detail"]["artifact"]["key"].startswith(f"models/{model_name}/")


def test_forged_expired_and_replayed_deliveries_are_refused_with_a_log_line(sandbox, model_name):
    # GIVEN the endpoint and its secret
    secret = sandbox.webhook_secret()
    url = sandbox.webhook_url

    # WHEN a delivery is signed with the wrong secret
    body, headers = signed_delivery("not-the-secret", created_payload(model_name))
    forged = post(url, body, headers)
    # AND a genuine one is replayed with an old timestamp (10 minutes)
    old_body, old_headers = signed_delivery(secret, created_payload(model_name), timestamp=int(time.time()) - 600)
    expired = post(url, old_body, old_headers)
    # AND a genuine one is sent twice
    good_body, good_headers = signed_delivery(secret, created_payload(model_name, version="7"))
    first = post(url, good_body, good_headers)
    replayed = post(url, good_body, good_headers)
    # AND one comes with no signature at all
    unsigned = post(url, good_body, {})

    # THEN the forgery is 401, the stale one 403, the replay 403, the unsigned 401; only the first genuine is accepted
    assert forged == (401, {"status": "refused", "reason": "bad_signature"})
    assert expired == (403, {"status": "refused", "reason": "stale_timestamp"})
    assert first == (202, {"status": "published", "reason": "model_version_created"})
    assert replayed == (403, {"status": "refused", "reason": "replayed_delivery"})
    assert unsigned == (401, {"status": "refused", "reason": "missing_signature"})
    [event] = sandbox.wait_for_events(REGISTERED, model_name=model_name, timeout=30)
    assert event["detail"]["version"] == "7"
    # AND each refusal is one warning line naming its reason and the claimed delivery id
    refusals = {
        line["delivery_id"]: line["reason"]
        for line in webhook_log(sandbox, "webhook refused")
        if line["level"] == "WARNING" and line.get("delivery_id")
    }
    assert refusals[headers["X-MLflow-Delivery-Id"]] == "bad_signature"
    assert refusals[old_headers["X-MLflow-Delivery-Id"]] == "stale_timestamp"
    assert refusals[good_headers["X-MLflow-Delivery-Id"]] == "replayed_delivery"
    # AND the secret is in no log line
    assert secret not in sandbox.log_path("webhook").read_text()
