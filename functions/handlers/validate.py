"""Validate function: `Model Version Registered` or `Validation Requested` → a verdict on the version.

Thin on purpose: parse each record into a `ValidationRequest`, hand it to `Validator.validate`, count
the verdict. A failed verdict is a result, not an error; errors mean what `sqs_batch` says they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.domain.policy import load_policies
from functions.domain.validation import ValidationRequest, Validator
from functions.handlers.project_events import parse_project_event
from functions.handlers.sqs_batch import BatchQueue, process_batch
from functions.metrics import UPLOAD_TO_VALIDATED
from functions.models.events import ModelVersionRegistered, ValidationRequested
from functions.observability import count, logger, metrics, record_latency, tracer
from functions.settings import build_into_snapshot, load_settings


@dataclass(frozen=True)
class Dependencies:
    validator: Validator
    queue: BatchQueue


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict, context: LambdaContext, dependencies: Dependencies | None = None
) -> PartialItemFailureResponse:
    deps = dependencies or _dependencies()
    return process_batch(event, context, queue=deps.queue, handle=lambda record: _handle(record, deps))


def _handle(record: SQSRecord, deps: Dependencies) -> None:
    event, detail = parse_project_event(record.body, ModelVersionRegistered, ValidationRequested)
    assert isinstance(detail, ModelVersionRegistered | ValidationRequested)  # nosec B101: narrows to what parse_project_event was asked for
    request = ValidationRequest(
        model_name=detail.model_name,
        version=detail.version,
        correlation_id=detail.correlation_id,
        artifact=detail.artifact if isinstance(detail, ModelVersionRegistered) else None,
        replay_name=event.replay_name or detail.replay_name,
        workspace=detail.workspace,
    )
    logger.set_correlation_id(request.correlation_id)
    logger.append_keys(model_name=request.model_name, version=request.version)
    if request.workspace:
        logger.append_keys(workspace=request.workspace)
    if request.replay_name:
        logger.append_keys(replay_name=request.replay_name)
    verdict = deps.validator.validate(request)
    if verdict.status == "skipped":
        logger.warning("version no longer exists: nothing to validate")
        count("ValidationSkipped", reason="version_missing")
        return
    logger.info(
        f"validation {verdict.status}", policy=verdict.policy, reasons=verdict.reasons, tags_changed=verdict.changed
    )
    count("ValidationPassed" if verdict.status == "passed" else "ValidationFailed", model=request.model_name)
    if request.artifact and not request.replay_name:  # first verdict after an upload (not a re-run or a replay)
        record_latency(UPLOAD_TO_VALIDATED, request.artifact.uploaded_at)


@lru_cache(maxsize=1)
def _dependencies() -> Dependencies:
    """Built on the first invocation and reused while the container is warm (one MLflow client)."""
    from functions.adapters.eventbridge import EventBridgePublisher
    from functions.adapters.registry_factory import registry_from_settings
    from functions.adapters.s3_artifacts import S3ArtifactStore
    from functions.adapters.sqs import QueueControl

    settings = load_settings()
    proofs = None
    if settings.PROOF != "off":
        from functions.adapters.bucket_proof import BucketModelProofs, proof_settings

        proofs = BucketModelProofs(proof_settings(settings))
    validator = Validator(
        load_policies(Path(settings.POLICIES_DIR)),
        bucket=settings.ARTIFACT_BUCKET,
        registry=registry_from_settings(settings),
        artifacts=S3ArtifactStore(),
        events=EventBridgePublisher(bus_name=settings.EVENT_BUS_NAME, source=settings.EVENT_SOURCE),
        proofs=proofs,
    )
    queue = QueueControl(queue_url=settings.QUEUE_URL, dead_letter_queue_url=settings.DEAD_LETTER_QUEUE_URL)
    return Dependencies(validator=validator, queue=queue)


build_into_snapshot(_dependencies)
