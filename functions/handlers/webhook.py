"""Webhook function: signed MLflow registry webhooks (Lambda function URL) → `Model Version Registered`.

Thin on purpose: read the function URL request, hand it to `WebhookReceiver.receive` (verification and
translation are `functions.domain.webhooks`), answer with the status it decides, log and count the outcome.
A refused delivery gets 401/403 (or 400/405/413/415) and one warning line naming the reason; a dependency failure
gets 503, which MLflow retries with the same delivery id (the id is only remembered once the event is out).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from aws_lambda_powertools.utilities.data_classes import LambdaFunctionUrlEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.domain.errors import InProgress, Unavailable
from functions.domain.webhooks import WebhookConfig, WebhookReceiver, WebhookRefused, WebhookRequest
from functions.observability import count, logger, metrics, tracer
from functions.settings import load_webhook_settings


@dataclass(frozen=True)
class Dependencies:
    receiver: WebhookReceiver
    secret: Callable[[], str | None]
    """The HMAC secret (cached by the adapter)."""
    max_body_bytes: int
    register_context: Callable[[LambdaContext], None] = lambda context: None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext, dependencies: Dependencies | None = None) -> dict:
    deps = dependencies or _dependencies()
    deps.register_context(context)
    url_event = LambdaFunctionUrlEvent(event)
    http = url_event.request_context.http
    headers = dict(url_event.headers or {})
    claimed = WebhookRequest(http.method, headers, b"").delivery_id  # well formed or None: safe to log
    logger.append_keys(source_ip=http.source_ip, user_agent=(http.user_agent or "")[:200], delivery_id=claimed)
    try:
        request = WebhookRequest(http.method, headers, _body(url_event, deps.max_body_bytes))
        secret = deps.secret()
        if not secret:
            raise Unavailable("webhook_secret_unavailable", "the webhook secret is empty or binary")
        receipt = deps.receiver.receive(request, secret=secret, now=time.time())
    except WebhookRefused as refusal:
        logger.warning("webhook refused", reason=refusal.reason, status=refusal.status, error=refusal.message)
        count("WebhookRefused", reason=refusal.reason)
        return _answer(refusal.status, {"status": "refused", "reason": refusal.reason})
    except InProgress:
        logger.info("webhook delivery already in progress", reason="delivery_in_progress")
        count("WebhookRefused", reason="delivery_in_progress")
        return _answer(409, {"status": "refused", "reason": "delivery_in_progress"})
    except Unavailable as error:
        logger.warning("webhook not processed: MLflow will retry", reason=error.reason, error=error.message)
        count("WebhookFailed", reason=error.reason)
        return _answer(503, {"status": "failed", "reason": error.reason})
    except Exception:  # noqa: BLE001 - answer 500 (MLflow retries it) rather than let Lambda answer 502
        logger.exception("webhook not processed: unexpected error", reason="unexpected_error")
        count("WebhookFailed", reason="unexpected_error")
        return _answer(500, {"status": "failed", "reason": "unexpected_error"})
    if receipt.event is not None:
        logger.info(
            "model version registered in the registry: announced",
            model_name=receipt.event.model_name,
            version=receipt.event.version,
            source_uri=receipt.event.source_uri,
        )
        count("WebhookPublished")
    else:
        logger.info("webhook verified: nothing to announce", reason=receipt.reason, subject=receipt.subject)
        count("WebhookIgnored", reason=receipt.reason.split(":", 1)[0])
    return _answer(receipt.status, {"status": receipt.outcome, "reason": receipt.reason})


def _body(event: LambdaFunctionUrlEvent, max_bytes: int) -> bytes:
    raw = event.body or ""
    if len(raw) > 2 * max_bytes:  # refuse before decoding anything large
        raise WebhookRefused(413, "body_too_large", f"the body is over {max_bytes} bytes")
    if not event.is_base64_encoded:
        return raw.encode("utf-8")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRefused(400, "malformed_body", "the body is not valid base64") from None


def _answer(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


@lru_cache(maxsize=1)
def _dependencies() -> Dependencies:
    """Built on the first invocation and reused while the container is warm."""
    from functions.adapters.eventbridge import EventBridgePublisher
    from functions.adapters.idempotency import IdempotentCall
    from functions.adapters.secrets import read_secret
    from functions.domain.webhooks import publish_work

    settings = load_webhook_settings()
    events = EventBridgePublisher(bus_name=settings.EVENT_BUS_NAME, source=settings.EVENT_SOURCE)
    once = IdempotentCall(
        publish_work(events),
        table_name=settings.IDEMPOTENCY_TABLE,
        ttl_seconds=settings.WEBHOOK_DELIVERY_TTL_SECONDS,
        key_prefix="webhook",
    )
    config = WebhookConfig(
        artifact_bucket=settings.ARTIFACT_BUCKET,
        tolerance_seconds=settings.WEBHOOK_TOLERANCE_SECONDS,
        max_body_bytes=settings.WEBHOOK_MAX_BODY_BYTES,
    )

    def secret() -> str | None:
        try:
            return read_secret(settings.WEBHOOK_SECRET_ARN)
        except Exception as error:  # noqa: BLE001 - Secrets Manager errors carry no secret value
            raise Unavailable("webhook_secret_unavailable", f"cannot read the webhook secret: {error}") from None

    return Dependencies(
        receiver=WebhookReceiver(config, once=once),
        secret=secret,
        max_body_bytes=settings.WEBHOOK_MAX_BODY_BYTES,
        register_context=once.register_context,
    )
