"""The webhook function's handler: function URL events in, HTTP answers out, one log line per refusal."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from functions.domain.errors import Unavailable
from functions.domain.webhooks import WebhookConfig, WebhookReceiver, publish_work, sign
from functions.handlers.webhook import Dependencies, lambda_handler
from functions.observability import logger
from sandbox.event_source import LambdaContext
from tests.conftest import load_event
from tests.fakes import FakeEventPublisher, OncePerIdentity

SECRET = "webhook-" + uuid.uuid4().hex


class DownEventBus(FakeEventPublisher):
    def publish(self, detail) -> None:  # type: ignore[no-untyped-def]
        raise Unavailable("event_bus_unavailable", "PutEvents failed: endpoint unreachable")


def deps(events: FakeEventPublisher, secret: str | None = SECRET) -> Dependencies:
    config = WebhookConfig(artifact_bucket="registry-autopilot-artifacts", max_body_bytes=4096)
    return Dependencies(
        receiver=WebhookReceiver(config, once=OncePerIdentity(publish_work(events))),
        secret=lambda: secret,
        max_body_bytes=4096,
    )


def url_event(body: bytes, *, signed_with: str = SECRET, age: int = 0, base64_body: bool = False) -> dict:
    event = load_event("function_url_request.json")
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time()) - age)
    event["headers"].update(
        {
            "x-mlflow-delivery-id": delivery_id,
            "x-mlflow-timestamp": timestamp,
            "x-mlflow-signature": sign(signed_with, delivery_id, timestamp, body),
            "content-length": str(len(body)),
        }
    )
    event["body"] = base64.b64encode(body).decode() if base64_body else body.decode()
    event["isBase64Encoded"] = base64_body
    return event


def created(name: str = "fraud") -> bytes:
    data = {"name": name, "version": "1", "source": "s3://team/fraud/1", "run_id": None, "tags": {}}
    return json.dumps({"entity": "model_version", "action": "created", "timestamp": "t", "data": data}).encode()


def context() -> LambdaContext:
    return LambdaContext(function_name="registry-autopilot-webhook", memory_limit_in_mb=256, timeout_seconds=10)


def log_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    """The handler's log lines as the function writes them (JSON, with the keys it appended)."""
    return [json.loads(logger.registered_formatter.format(record)) for record in caplog.records]


@pytest.mark.parametrize("base64_body", [False, True])
def test_a_signed_delivery_is_accepted_and_published(base64_body: bool, caplog: pytest.LogCaptureFixture):
    # GIVEN a signed model_version.created delivery, as Lambda hands it over (body as text or base64)
    events = FakeEventPublisher()

    # WHEN the handler runs
    answer = lambda_handler(url_event(created(), base64_body=base64_body), context(), dependencies=deps(events))

    # THEN it answers 202, the event is published, and the log names the version and the sender
    assert answer["statusCode"] == 202
    assert json.loads(answer["body"]) == {"status": "published", "reason": "model_version_created"}
    assert [e.model_name for e in events.published] == ["fraud"]
    [line] = [line for line in log_lines(caplog) if line["message"].startswith("model version")]
    assert (line["model_name"], line["source_ip"]) == ("fraud", "203.0.113.10")


@pytest.mark.parametrize(
    ("event_for", "status", "reason"),
    [
        (lambda: url_event(created(), signed_with="forged"), 401, "bad_signature"),
        (lambda: url_event(created(), age=3600), 403, "stale_timestamp"),
        (lambda: {**url_event(created()), "body": "x" * 10_000}, 413, "body_too_large"),
        (lambda: {**url_event(created()), "body": "!!", "isBase64Encoded": True}, 400, "malformed_body"),
    ],
)
def test_refused_deliveries_get_their_status_and_one_warning_line(  # type: ignore[no-untyped-def]
    event_for, status: int, reason: str, caplog: pytest.LogCaptureFixture
):
    # GIVEN a forged, stale, oversized or undecodable delivery
    events = FakeEventPublisher()
    event = event_for()

    # WHEN the handler runs
    answer = lambda_handler(event, context(), dependencies=deps(events))

    # THEN it answers with the refusal's status, publishes nothing, and logs one warning with the reason
    assert answer["statusCode"] == status
    assert json.loads(answer["body"]) == {"status": "refused", "reason": reason}
    assert events.published == []
    lines = log_lines(caplog)
    [warning] = [line for line in lines if line["level"] == "WARNING"]
    assert (warning["message"], warning["reason"], warning["status"]) == ("webhook refused", reason, status)
    assert warning["delivery_id"] == event["headers"]["x-mlflow-delivery-id"]
    assert SECRET not in json.dumps(lines)


def test_a_failed_publish_answers_503_so_mlflow_retries_and_the_retry_is_not_a_replay():
    # GIVEN a signed delivery and an event bus that is down
    event = url_event(created())
    once = OncePerIdentity(publish_work(DownEventBus()))
    failing = Dependencies(
        receiver=WebhookReceiver(WebhookConfig(artifact_bucket="b"), once=once),
        secret=lambda: SECRET,
        max_body_bytes=4096,
    )

    # WHEN the handler runs, then MLflow retries the same delivery once the bus is back
    first = lambda_handler(event, context(), dependencies=failing)
    events = FakeEventPublisher()
    recovered = Dependencies(
        receiver=WebhookReceiver(WebhookConfig(artifact_bucket="b"), once=OncePerIdentity(publish_work(events))),
        secret=lambda: SECRET,
        max_body_bytes=4096,
    )
    second = lambda_handler(event, context(), dependencies=recovered)

    # THEN the first answer is 503 (MLflow retries 5xx) and the retry is accepted, not refused as a replay
    assert first["statusCode"] == 503
    assert json.loads(first["body"])["reason"] == "event_bus_unavailable"
    assert second["statusCode"] == 202
    assert len(events.published) == 1


def test_a_missing_secret_is_a_dependency_failure_not_an_open_door():
    # GIVEN a function whose secret reads as empty
    events = FakeEventPublisher()

    # WHEN a delivery signed with an empty key arrives
    answer = lambda_handler(url_event(created(), signed_with=""), context(), dependencies=deps(events, secret=""))

    # THEN nothing is verified against an empty key: 503, nothing published
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["reason"] == "webhook_secret_unavailable"
    assert events.published == []
