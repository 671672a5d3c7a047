"""Registry-first registrations: verifying an MLflow webhook delivery and turning it into a project event.

MLflow (3.3 and newer) signs each delivery the Standard Webhooks way (`mlflow/webhooks/delivery.py`):

    X-MLflow-Delivery-Id: <uuid4>          X-MLflow-Timestamp: <unix seconds>
    X-MLflow-Signature:   v1,<base64(HMAC-SHA256(secret, "<delivery id>.<timestamp>.<raw body>"))>

The endpoint is public (a Lambda function URL without IAM auth, since MLflow cannot sign requests with AWS
credentials), so this verification is the gate. `WebhookReceiver.receive` answers:

- 413 for a body over the cap (before any other work); 405 for anything but POST; 415 for a content type other
  than `application/json` (MLflow always sends that one, `mlflow/webhooks/delivery.py`);
- 401 for a missing or malformed signature, timestamp or delivery id, or a signature that does not verify;
- 403 for a verified delivery whose timestamp is outside the tolerance (stale or from the future), or whose
  delivery id was seen before (a replay);
- 400 for a verified delivery whose body is not MLflow's payload;
- 202 when a `Model Version Registered` event was published, 200 when the delivery was verified and needs
  nothing (a version this system created, an upload the register route handles, another event type).

MLflow retries a delivery only on 429 and 5xx (`Retry(status_forcelist=[429, 500, 502, 503, 504])` in
`mlflow/webhooks/delivery.py`, MLflow 3.17.2; events: https://mlflow.org/docs/latest/ml/webhooks): every refusal
above is final, and a genuine delivery of an event type this system does not forward (MLflow adds types: prompts,
budget policies) is acknowledged with 200 rather than refused, so that `test_webhook` and the sender see success.

Versions tagged `registered_by=registry-autopilot` were created by the register route, which announced them
itself: they are ignored, so nothing is processed twice and nothing loops. So are versions whose source lies in
the artifact bucket: the register route owns those, and registers them only once the upload is complete.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.domain.errors import Rejected
from functions.domain.events import version_event
from functions.domain.layouts import check_model_name
from functions.domain.ports import EventPublisher, VersionInfo
from functions.domain.tags import REGISTERED_BY, REGISTERED_BY_TAG
from functions.models.events import ModelVersionRegistered, workspace_name_problem

SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_ID_HEADER = "x-mlflow-delivery-id"
SIGNATURE_VERSION = "v1"
CONTENT_TYPE = "application/json"

_DELIVERY_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_TIMESTAMP = re.compile(r"^\d{1,12}$")
_MODEL_ID_SOURCE = re.compile(r"^models:/(?P<model_id>m-[0-9a-f]{32})$")
_REGISTRY_NAMESPACE = uuid.UUID("0b4a5e5e-3a0c-4d8e-8f1e-7f3c9d2a6b41")


class WebhookRefused(Exception):
    """The delivery is refused with an HTTP status; `reason` is a short stable code for logs and metrics."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class WebhookRequest:
    """What the endpoint received: method, headers (any case) and the raw body bytes."""

    method: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)

    @property
    def delivery_id(self) -> str | None:
        """The claimed delivery id when it is well formed (safe to log), else None."""
        value = self.header(DELIVERY_ID_HEADER)
        return value if value and _DELIVERY_ID.fullmatch(value) else None


@dataclass(frozen=True)
class WebhookConfig:
    artifact_bucket: str
    tolerance_seconds: int = 300
    max_body_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Receipt:
    """The answer to a delivery that was not refused."""

    status: Literal[200, 202]
    outcome: Literal["published", "ignored"]
    reason: str
    delivery_id: str
    event: ModelVersionRegistered | None = None
    subject: str = ""
    """`<model name>/<version>` when the delivery is about a model version (for the log line)."""


# --- MLflow's payload ---------------------------------------------------------------------------------------------


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class WebhookPayload(_Payload):
    """The envelope MLflow posts: `{"entity", "action", "timestamp", "data"}`, and `workspace` from a server with
    workspaces on (`mlflow.webhooks.delivery`: the webhook's workspace, which is the version's)."""

    entity: str = Field(min_length=1, max_length=100)
    action: str = Field(min_length=1, max_length=100)
    data: dict
    workspace: str | None = Field(default=None, max_length=100)


class ModelVersionCreated(_Payload):
    """`data` of `model_version.created` (`mlflow.webhooks.types.ModelVersionCreatedPayload`)."""

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    source: str = Field(min_length=1)
    run_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None


# --- verification -------------------------------------------------------------------------------------------------


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The `X-MLflow-Signature` value MLflow sends for this delivery."""
    signed = b".".join((delivery_id.encode(), timestamp.encode(), body))
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(request: WebhookRequest, *, secret: str, now: float, config: WebhookConfig) -> str:
    """Check size, method, signature and timestamp; returns the verified delivery id or raises `WebhookRefused`."""
    if len(request.body) > config.max_body_bytes:
        raise WebhookRefused(413, "body_too_large", f"the body is over {config.max_body_bytes} bytes")
    if request.method.upper() != "POST":
        raise WebhookRefused(405, "method_not_allowed", "only POST is accepted")
    media_type = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type != CONTENT_TYPE:
        raise WebhookRefused(415, "unsupported_content_type", f"the content type must be {CONTENT_TYPE}")
    signature = request.header(SIGNATURE_HEADER)
    timestamp = request.header(TIMESTAMP_HEADER)
    delivery_id = request.header(DELIVERY_ID_HEADER)
    if not signature or not timestamp or not delivery_id:
        raise WebhookRefused(401, "missing_signature", "the delivery id, timestamp and signature headers are required")
    if not _DELIVERY_ID.fullmatch(delivery_id) or not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookRefused(401, "malformed_headers", "the delivery id or timestamp header is malformed")
    if not _signature_matches(signature, sign(secret, delivery_id, timestamp, request.body)):
        raise WebhookRefused(401, "bad_signature", "the signature does not verify")
    age = now - int(timestamp)
    if age > config.tolerance_seconds:
        raise WebhookRefused(
            403, "stale_timestamp", f"signed {int(age)} s ago; the tolerance is {config.tolerance_seconds} s"
        )
    if -age > config.tolerance_seconds:
        raise WebhookRefused(403, "future_timestamp", f"signed {int(-age)} s in the future")
    return delivery_id


def _signature_matches(header: str, expected: str) -> bool:
    """The header may list several `v1,<sig>` separated by spaces (Standard Webhooks, for key rotation)."""
    _, _, expected_b64 = expected.partition(",")
    expected_digest = base64.b64decode(expected_b64)
    for candidate in header.split()[:10]:
        version, _, value = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            digest = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(digest, expected_digest):
            return True
    return False


# --- translation --------------------------------------------------------------------------------------------------


def parse_payload(body: bytes) -> WebhookPayload:
    try:
        return WebhookPayload.model_validate_json(body)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:3])
        raise WebhookRefused(400, "malformed_payload", f"not an MLflow webhook payload: {problems}"[:500]) from None


def registry_correlation_id(model_name: str, version: str, workspace: str | None = None) -> str:
    """Stable per registry version, so redeliveries and replays of one version share it (and the same name and
    number in two MLflow workspaces do not; outside any, or in `default`, it is what it was before workspaces)."""
    scope = f"{workspace}/" if workspace and workspace != "default" else ""
    return str(uuid.uuid5(_REGISTRY_NAMESPACE, f"{scope}{model_name}/{version}"))


def translate(payload: WebhookPayload, *, artifact_bucket: str) -> ModelVersionRegistered | str:
    """The event to publish for a verified payload, or the reason it needs none."""
    if (payload.entity, payload.action) != ("model_version", "created"):
        return f"not_forwarded:{payload.entity}.{payload.action}"
    try:
        data = ModelVersionCreated.model_validate(payload.data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
        raise WebhookRefused(400, "malformed_payload", f"not a model_version.created payload: {problems}") from None
    if data.tags.get(REGISTERED_BY_TAG) == REGISTERED_BY:
        return "created_by_registry_autopilot"
    if data.source.startswith(f"s3://{artifact_bucket}/"):
        return "artifact_bucket_upload"
    try:
        check_model_name(data.name)
    except Rejected:
        return "unsupported_model_name"
    problem = workspace_name_problem(payload.workspace) if payload.workspace else None
    if problem:
        raise WebhookRefused(400, "malformed_payload", f"not an MLflow workspace: {problem}")
    model_id = _MODEL_ID_SOURCE.fullmatch(data.source)
    return version_event(
        ModelVersionRegistered,
        VersionInfo(data.name, data.version, data.source, run_id=data.run_id or None),
        workspace=payload.workspace,
        correlation_id=registry_correlation_id(data.name, data.version, payload.workspace),
        model_id=model_id.group("model_id") if model_id else None,
        already_registered=False,
    )


# --- the receiver -------------------------------------------------------------------------------------------------


def publish_work(events: EventPublisher) -> Callable[[dict], dict]:
    """The step that runs at most once per delivery id: publish the event, if there is one."""

    def work(payload: dict) -> dict:
        if payload.get("event") is not None:
            events.publish(ModelVersionRegistered.model_validate(payload["event"]))
        return {"attempt": payload["attempt"]}

    return work


class WebhookReceiver:
    """Verify, translate, and publish at most once per delivery id.

    `once(payload)` runs `publish_work(...)` for a payload at most once per `payload["identity"]` (the
    idempotency layer, kept long enough to outlive the timestamp tolerance) and returns that first run's result.
    """

    def __init__(self, config: WebhookConfig, *, once: Callable[[dict], dict]) -> None:
        self._config = config
        self._once = once

    def receive(self, request: WebhookRequest, *, secret: str, now: float) -> Receipt:
        delivery_id = verify(request, secret=secret, now=now, config=self._config)
        payload = parse_payload(request.body)
        subject = "/".join(str(payload.data.get(key, "")) for key in ("name", "version") if payload.data.get(key))
        result = translate(payload, artifact_bucket=self._config.artifact_bucket)
        event = result if isinstance(result, ModelVersionRegistered) else None
        attempt = str(uuid.uuid4())
        work = {
            "identity": f"webhook:{delivery_id}",
            "attempt": attempt,
            "event": json.loads(event.model_dump_json()) if event else None,
        }
        if self._once(work).get("attempt") != attempt:
            raise WebhookRefused(403, "replayed_delivery", f"delivery {delivery_id} was received before")
        if event is None:
            return Receipt(200, "ignored", str(result), delivery_id, subject=subject[:300])
        return Receipt(202, "published", "model_version_created", delivery_id, event, subject=subject[:300])
