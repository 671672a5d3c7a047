"""Register function: S3 `Object Created` events (EventBridge → SQS) → MLflow model versions.

Thin on purpose: parse each record, hand the upload to `Registrar.register` (run at most once per
upload), count the outcome. What errors mean for the message is `functions.handlers.sqs_batch`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from functions.domain.errors import Rejected
from functions.domain.registration import Registrar, RegistrationConfig, UploadedObject
from functions.handlers.sqs_batch import BatchQueue, process_batch
from functions.metrics import UPLOAD_TO_REGISTERED
from functions.models.s3 import S3ObjectEvent
from functions.observability import count, logger, metrics, record_latency, tracer
from functions.settings import build_into_snapshot, load_settings

IDEMPOTENCY_KEY_PREFIX = "register"


@dataclass(frozen=True)
class Dependencies:
    register_once: Callable[[dict, LambdaContext | None], dict]
    """Runs `Registrar.register` for an upload payload at most once per upload identity."""
    queue: BatchQueue


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict, context: LambdaContext, dependencies: Dependencies | None = None
) -> PartialItemFailureResponse:
    deps = dependencies or _dependencies()
    return process_batch(event, context, queue=deps.queue, handle=lambda record: _handle(record, deps, context))


def _handle(record: SQSRecord, deps: Dependencies, context: LambdaContext | None) -> None:
    event = _parse(record.body)
    upload = UploadedObject(
        bucket=event.detail.bucket.name,
        key=event.detail.object.key,
        etag=event.detail.object.etag,
        version_id=event.detail.object.version_id,
        size=event.detail.object.size,
        uploaded_at=event.time,
        replay_name=event.replay_name,
        backfill=event.detail.backfill,
    )
    # One correlation id per upload (its identity), in every log line and every event about it.
    logger.set_correlation_id(upload.correlation_id)
    logger.append_keys(bucket=upload.bucket, key=upload.key)
    if event.replay_name:
        logger.append_keys(replay_name=event.replay_name)
    if event.detail_type != "Object Created":
        logger.info("skipped: not an Object Created event", detail_type=event.detail_type)
        count("RegistrationSkipped", reason="not_object_created")
        return

    attempt = str(uuid.uuid4())
    # With the context, an in-progress record left by a killed invocation expires with it (adapters.idempotency).
    outcome = deps.register_once({**upload.as_payload(), "attempt": attempt}, context)
    logger.append_keys(model_name=outcome.get("model_name"), version=outcome.get("version"))
    if outcome.get("attempt") != attempt:
        logger.info("duplicate delivery: already handled", status=outcome.get("status"))
        count("DuplicateSuppressed")
    elif outcome["status"] == "registered":
        logger.info("model version registered", source_uri=outcome.get("source_uri"))
        count("VersionRegistered")
        if not upload.replay_name and not upload.backfill:  # their upload time is the original one: not a latency
            record_latency(UPLOAD_TO_REGISTERED, upload.uploaded_at)
    elif outcome["status"] == "already_registered":
        logger.info("model version already in the registry", source_uri=outcome.get("source_uri"))
        count("DuplicateSuppressed")
    else:
        logger.info("skipped", reason=outcome.get("reason"))
        count("RegistrationSkipped", reason=outcome.get("reason") or "unknown")


def _parse(body: str) -> S3ObjectEvent:
    try:
        return S3ObjectEvent.model_validate_json(body)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
        raise Rejected("malformed_event", f"not an S3 object event: {problems}"[:1000]) from None


def registration_work(registrar: Registrar) -> Callable[[dict], dict]:
    """The function the idempotency layer wraps: payload in, outcome (with the attempt id) out."""

    def work(payload: dict) -> dict:
        outcome = registrar.register(UploadedObject.from_payload(payload))
        return {**outcome.as_dict(), "attempt": payload["attempt"]}

    return work


@lru_cache(maxsize=1)
def _dependencies() -> Dependencies:
    """Built on the first invocation and reused while the container is warm (one MLflow client)."""
    from functions.adapters.eventbridge import EventBridgePublisher
    from functions.adapters.idempotency import IdempotentCall
    from functions.adapters.registry_factory import connect_registry
    from functions.adapters.s3_artifacts import S3ArtifactStore
    from functions.adapters.sqs import QueueControl

    settings = load_settings()
    registrar = Registrar(
        RegistrationConfig(
            bucket=settings.ARTIFACT_BUCKET,
            artifact_root_prefix=settings.ARTIFACT_ROOT_PREFIX,
            model_name_tag=settings.MODEL_NAME_TAG,
            experiment_model_names=settings.EXPERIMENT_MODEL_NAMES,
            mlmodel_max_bytes=settings.MLMODEL_MAX_BYTES,
            max_pending_seconds=settings.MAX_PENDING_SECONDS,
        ),
        # Connects on first use: a missing or wrong secret fails the record (retried), not the container.
        registry=connect_registry(
            tracking_uri=settings.MLFLOW_TRACKING_URI,
            registry_uri=settings.MLFLOW_REGISTRY_URI,
            credentials_secret_arn=settings.MLFLOW_CREDENTIALS_SECRET_ARN,
        ),
        artifacts=S3ArtifactStore(),
        events=EventBridgePublisher(bus_name=settings.EVENT_BUS_NAME, source=settings.EVENT_SOURCE),
    )
    once = IdempotentCall(
        registration_work(registrar),
        table_name=settings.IDEMPOTENCY_TABLE,
        ttl_seconds=settings.IDEMPOTENCY_TTL_SECONDS,
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    )
    queue = QueueControl(queue_url=settings.QUEUE_URL, dead_letter_queue_url=settings.DEAD_LETTER_QUEUE_URL)
    return Dependencies(register_once=once, queue=queue)


build_into_snapshot(_dependencies)
