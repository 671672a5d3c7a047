"""Webhook verification and translation (functions.domain.webhooks), against MLflow's own signing code."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from functions.domain.tags import REGISTERED_BY, REGISTERED_BY_TAG
from functions.domain.webhooks import (
    WebhookConfig,
    WebhookReceiver,
    WebhookRefused,
    WebhookRequest,
    publish_work,
    registry_correlation_id,
    sign,
    verify,
)
from functions.models.events import ModelVersionRegistered
from tests.fakes import FakeEventPublisher, OncePerIdentity

SECRET = "s3cr3t-" + "x" * 40
CONFIG = WebhookConfig(artifact_bucket="registry-autopilot-artifacts", tolerance_seconds=300, max_body_bytes=4096)
NOW = 1_795_700_000


def payload(entity: str = "model_version", action: str = "created", **data: object) -> dict:
    base = {"name": "fraud", "version": "3", "source": "s3://team/fraud/3", "run_id": None, "tags": {}}
    return {"entity": entity, "action": action, "timestamp": "2026-11-26T12:00:00+00:00", "data": {**base, **data}}


def delivery(body: dict | bytes, *, secret: str = SECRET, timestamp: int = NOW, method: str = "POST") -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    delivery_id = str(uuid.uuid4())
    headers = {
        "x-mlflow-delivery-id": delivery_id,
        "x-mlflow-timestamp": str(timestamp),
        "x-mlflow-signature": sign(secret, delivery_id, str(timestamp), raw),
        "content-type": "application/json",
    }
    return WebhookRequest(method, headers, raw)


def receiver() -> tuple[WebhookReceiver, FakeEventPublisher]:
    events = FakeEventPublisher()
    return WebhookReceiver(CONFIG, once=OncePerIdentity(publish_work(events))), events


def test_signature_is_the_one_mlflow_sends():
    # GIVEN a delivery id, timestamp and body
    delivery_id, timestamp, body = str(uuid.uuid4()), str(int(time.time())), json.dumps(payload())

    # WHEN we sign it, and MLflow's webhook sender signs it
    ours = sign(SECRET, delivery_id, timestamp, body.encode())
    mlflows = _generate_hmac_signature(SECRET, delivery_id, timestamp, body)

    # THEN the values are identical (v1,<base64 HMAC-SHA256>)
    assert ours == mlflows
    assert ours.startswith("v1,")


def test_a_genuine_delivery_is_verified_with_any_header_case():
    # GIVEN a signed delivery whose headers arrive in another case
    request = delivery(payload())
    shouted = WebhookRequest("POST", {key.upper(): value for key, value in request.headers.items()}, request.body)

    # WHEN it is verified
    delivery_id = verify(shouted, secret=SECRET, now=NOW + 10, config=CONFIG)

    # THEN its delivery id comes back
    assert delivery_id == request.headers["x-mlflow-delivery-id"]


@pytest.mark.parametrize(
    ("tamper", "status", "reason"),
    [
        (lambda r: WebhookRequest(r.method, r.headers, r.body + b" "), 401, "bad_signature"),
        (
            lambda r: WebhookRequest(r.method, {**r.headers, "x-mlflow-timestamp": str(NOW + 1)}, r.body),
            401,
            "bad_signature",
        ),
        (
            lambda r: WebhookRequest(r.method, {**r.headers, "x-mlflow-delivery-id": str(uuid.uuid4())}, r.body),
            401,
            "bad_signature",
        ),
        (
            lambda r: WebhookRequest(r.method, {**r.headers, "x-mlflow-signature": "v2,AAAA"}, r.body),
            401,
            "bad_signature",
        ),
        (
            lambda r: WebhookRequest(r.method, {**r.headers, "x-mlflow-signature": "v1,not base64!"}, r.body),
            401,
            "bad_signature",
        ),
        (
            lambda r: WebhookRequest(
                r.method, {k: v for k, v in r.headers.items() if k != "x-mlflow-signature"}, r.body
            ),
            401,
            "missing_signature",
        ),
        (
            lambda r: WebhookRequest(r.method, {**r.headers, "x-mlflow-timestamp": "soon"}, r.body),
            401,
            "malformed_headers",
        ),
        (
            lambda r: WebhookRequest(r.method, {**r.headers, "x-mlflow-delivery-id": "../../etc"}, r.body),
            401,
            "malformed_headers",
        ),
        (lambda r: WebhookRequest("GET", r.headers, r.body), 405, "method_not_allowed"),
        (lambda r: WebhookRequest(r.method, r.headers, b"{" + b" " * 5000 + b"}"), 413, "body_too_large"),
        (
            lambda r: WebhookRequest(r.method, {**r.headers, "content-type": "text/plain"}, r.body),
            415,
            "unsupported_content_type",
        ),
        (
            lambda r: WebhookRequest(r.method, {k: v for k, v in r.headers.items() if k != "content-type"}, r.body),
            415,
            "unsupported_content_type",
        ),
    ],
)
def test_a_tampered_or_malformed_delivery_is_refused(tamper, status: int, reason: str):  # type: ignore[no-untyped-def]
    # GIVEN a genuine delivery, changed on the way
    request = tamper(delivery(payload()))

    # WHEN it is verified
    # THEN it is refused with its status and reason
    with pytest.raises(WebhookRefused, match=r".") as refused:
        verify(request, secret=SECRET, now=NOW, config=CONFIG)
    assert (refused.value.status, refused.value.reason) == (status, reason)


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8"])
def test_a_json_content_type_with_parameters_is_accepted(content_type: str):
    # GIVEN a genuine delivery whose content type is JSON, spelled in another case or with a charset
    request = delivery(payload())
    request = WebhookRequest(request.method, {**request.headers, "content-type": content_type}, request.body)

    # WHEN it is verified
    # THEN it passes
    assert verify(request, secret=SECRET, now=NOW, config=CONFIG) == request.headers["x-mlflow-delivery-id"]


def test_a_delivery_signed_with_another_secret_is_refused():
    # GIVEN a delivery signed with a secret that is not ours
    request = delivery(payload(), secret="not-the-secret")

    # WHEN it is verified
    # THEN it is refused as a bad signature
    with pytest.raises(WebhookRefused, match=r"does not verify") as refused:
        verify(request, secret=SECRET, now=NOW, config=CONFIG)
    assert refused.value.status == 401


@pytest.mark.parametrize(
    ("age", "reason"),
    [(301, "stale_timestamp"), (-301, "future_timestamp")],
)
def test_a_genuine_delivery_outside_the_tolerance_is_refused(age: int, reason: str):
    # GIVEN a correctly signed delivery, signed 301 s ago (or 301 s from now)
    request = delivery(payload(), timestamp=NOW - age)

    # WHEN it is verified now
    # THEN it is refused (403): a replay of an old delivery, or a clock far off
    with pytest.raises(WebhookRefused, match=r"s (ago|in the future)") as refused:
        verify(request, secret=SECRET, now=NOW, config=CONFIG)
    assert (refused.value.status, refused.value.reason) == (403, reason)


def test_several_signatures_are_accepted_when_one_verifies():
    # GIVEN a delivery carrying a stale signature and the right one (Standard Webhooks' rotation form)
    request = delivery(payload())
    both = f"v1,{'A' * 44} {request.headers['x-mlflow-signature']}"
    rotated = WebhookRequest("POST", {**request.headers, "x-mlflow-signature": both}, request.body)

    # WHEN it is verified
    # THEN it passes
    assert verify(rotated, secret=SECRET, now=NOW, config=CONFIG) == request.headers["x-mlflow-delivery-id"]


def test_model_version_created_becomes_model_version_registered():
    # GIVEN a genuine model_version.created delivery for a hand-registered version of a logged model
    receive, events = receiver()
    request = delivery(payload(source="models:/m-0123456789abcdef0123456789abcdef", run_id="abc"))

    # WHEN it is received
    receipt = receive.receive(request, secret=SECRET, now=NOW)

    # THEN Model Version Registered is published with the version's fields and a per-version correlation id
    assert (receipt.status, receipt.outcome) == (202, "published")
    [event] = events.published
    assert isinstance(event, ModelVersionRegistered)
    assert (event.model_name, event.version, event.run_id) == ("fraud", "3", "abc")
    assert event.source_uri == "models:/m-0123456789abcdef0123456789abcdef"
    assert event.model_id == "m-0123456789abcdef0123456789abcdef"
    assert event.correlation_id == registry_correlation_id("fraud", "3")
    assert event.artifact is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (payload(tags={REGISTERED_BY_TAG: REGISTERED_BY}), "created_by_registry_autopilot"),
        (payload(source="s3://registry-autopilot-artifacts/models/fraud/3"), "artifact_bucket_upload"),
        (payload(name="fraud detector"), "unsupported_model_name"),
        (payload(entity="model_version_alias", action="created"), "not_forwarded:model_version_alias.created"),
        (payload(entity="registered_model", action="created"), "not_forwarded:registered_model.created"),
    ],
)
def test_deliveries_that_need_nothing_are_verified_and_ignored(body: dict, reason: str):
    # GIVEN a genuine delivery this system must not announce (its own version, an upload the register route owns,
    # a name the pipeline refuses, another event type)
    receive, events = receiver()

    # WHEN it is received
    receipt = receive.receive(delivery(body), secret=SECRET, now=NOW)

    # THEN it is acknowledged (200) with its reason and nothing is published: no loop, nothing twice
    assert (receipt.status, receipt.outcome, receipt.reason) == (200, "ignored", reason)
    assert receipt.subject == f"{body['data']['name']}/3"  # what the log line names
    assert events.published == []


def test_a_replayed_delivery_is_refused_and_publishes_nothing_more():
    # GIVEN a genuine delivery that was received
    receive, events = receiver()
    request = delivery(payload())
    receive.receive(request, secret=SECRET, now=NOW)

    # WHEN the same delivery comes again within the tolerance
    # THEN it is refused as a replay (403), and the event was published once
    with pytest.raises(WebhookRefused, match=r"was received before") as refused:
        receive.receive(request, secret=SECRET, now=NOW + 60)
    assert (refused.value.status, refused.value.reason) == (403, "replayed_delivery")
    assert len(events.published) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", r"not an MLflow webhook payload"),
        (json.dumps({"entity": "model_version", "action": "created"}).encode(), r"data: Field required"),
        (json.dumps(payload(version=None)).encode(), r"not a model_version.created payload: version"),
    ],
)
def test_a_genuine_delivery_with_a_body_that_is_not_mlflows_is_a_bad_request(body: bytes, message: str):
    # GIVEN a correctly signed delivery whose body is not MLflow's payload
    receive, events = receiver()

    # WHEN it is received
    # THEN it is refused as a bad request (400), publishing nothing
    with pytest.raises(WebhookRefused, match=message) as refused:
        receive.receive(delivery(body), secret=SECRET, now=NOW)
    assert refused.value.status == 400
    assert events.published == []


def test_a_delivery_from_a_workspace_announces_the_version_in_that_workspace():
    # GIVEN deliveries from a server with workspaces on, for version 3 of fraud in team-a and in team-b
    receive, events = receiver()
    # WHEN both are received
    for workspace in ("team-a", "team-b"):
        receive.receive(delivery({**payload(), "workspace": workspace}), secret=SECRET, now=NOW)
    # THEN each event names its workspace (validate and aliases act there), and the two versions' ids differ
    first, second = events.published
    assert isinstance(first, ModelVersionRegistered)
    assert isinstance(second, ModelVersionRegistered)
    assert (first.workspace, second.workspace) == ("team-a", "team-b")
    assert first.correlation_id != second.correlation_id
    # AND the default workspace keeps the id a server without workspaces gives
    assert registry_correlation_id("fraud", "3", "default") == registry_correlation_id("fraud", "3")


def test_a_delivery_naming_a_workspace_mlflow_refuses_is_a_bad_request():
    # GIVEN a genuine delivery whose workspace is no MLflow workspace name
    receive, events = receiver()
    # WHEN it is received; THEN it is refused as a bad request, and nothing is published
    with pytest.raises(WebhookRefused) as refused:
        receive.receive(delivery({**payload(), "workspace": "Team_A"}), secret=SECRET, now=NOW)
    assert (refused.value.status, refused.value.reason) == (400, "malformed_payload")
    assert events.published == []
