"""Aliases function: passed verdicts, promotion and rollback requests → alias moves, one at a time (FIFO).

Environment promotion requests climb a promotion ladder here too (`functions.domain.ladder`), in the same lane, so
two requests for one version never copy it twice.

Thin on purpose: parse each record, hand it to the `AliasKeeper`, log and count each decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.domain.aliases import AliasKeeper, Decision
from functions.domain.errors import Rejected
from functions.domain.ladder import Climb, Climber, Side
from functions.domain.policy import load_policies
from functions.handlers.project_events import parse_project_event
from functions.handlers.sqs_batch import BatchQueue, process_batch
from functions.metrics import UPLOAD_TO_ALIAS_MOVED
from functions.models.events import (
    EnvironmentPromotionRequested,
    ModelVersionValidated,
    PromotionRequested,
    RollbackRequested,
)
from functions.observability import count, logger, metrics, record_latency, tracer
from functions.settings import build_into_snapshot, load_settings

_METRIC = {"moved": "AliasMoved", "pending": "PromotionPending", "kept": "AliasKept", "dry_run": "AliasDryRun"}
_CLIMB_METRIC = {
    "promoted": "LadderPromoted",
    "kept": "LadderKept",
    "validating": "LadderValidating",
    "dry_run": "LadderDryRun",
}


@dataclass(frozen=True)
class Dependencies:
    keeper: AliasKeeper
    queue: BatchQueue
    climber: Climber | None = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict, context: LambdaContext, dependencies: Dependencies | None = None
) -> PartialItemFailureResponse:
    deps = dependencies or _dependencies()
    return process_batch(
        event, context, queue=deps.queue, handle=lambda record: _handle(record, deps.keeper, deps.climber)
    )


def _handle(record: SQSRecord, keeper: AliasKeeper, climber: Climber | None = None) -> None:
    event, detail = parse_project_event(
        record.body, ModelVersionValidated, PromotionRequested, RollbackRequested, EnvironmentPromotionRequested
    )
    assert isinstance(  # nosec B101: narrows to what parse_project_event was asked for
        detail, ModelVersionValidated | PromotionRequested | RollbackRequested | EnvironmentPromotionRequested
    )
    logger.set_correlation_id(detail.correlation_id)
    logger.append_keys(model_name=detail.model_name)
    if detail.workspace:
        logger.append_keys(workspace=detail.workspace)
    if getattr(detail, "version", None):
        logger.append_keys(version=detail.version)
    replay = event.replay_name or detail.replay_name
    if replay:
        logger.append_keys(replay_name=replay)
        detail = detail.model_copy(update={"replay_name": replay})
    if isinstance(detail, ModelVersionValidated):
        decisions = keeper.on_verdict(detail)
        climb = climber.on_verdict(detail) if climber else None
        if climb:
            _report_climb(climb)
        if detail.status != "passed":
            logger.info("failed verdict: no alias moves")
        if not replay and any(decision.action == "moved" for decision in decisions):
            record_latency(UPLOAD_TO_ALIAS_MOVED, detail.uploaded_at)
    elif isinstance(detail, EnvironmentPromotionRequested):
        if climber is None:
            raise Rejected("no_ladder", "this function climbs no promotion ladder")
        logger.append_keys(environment=detail.environment)
        _report_climb(climber.promote(detail))
        decisions = []
    elif isinstance(detail, PromotionRequested):
        decisions = [keeper.promote(detail)]
    else:
        decisions = [keeper.rollback(detail)]
    for decision in decisions:
        _report(decision)
    for warning in keeper.warnings:
        logger.warning(warning)
    keeper.warnings.clear()


def _report(decision: Decision) -> None:
    if decision.action == "moved":
        message = f"alias {decision.alias} moved to v{decision.version}"
    elif decision.action == "dry_run":
        message = f"dry run: alias {decision.alias} would move to v{decision.version}"
    else:
        message = f"alias {decision.alias}: {decision.action}"
    logger.info(message, alias=decision.alias, previous_version=decision.previous, reason=decision.reason)
    count(_METRIC[decision.action], alias=decision.alias)


def _report_climb(climb: Climb) -> None:
    """Log and count a ladder decision."""
    logger.info(
        f"ladder {climb.environment}: {climb.action}",
        target_model=climb.model,
        target_version=climb.version,
        aliases=list(climb.aliases),
        reason=climb.reason,
    )
    count(_CLIMB_METRIC[climb.action], environment=climb.environment)


@lru_cache(maxsize=1)
def _dependencies() -> Dependencies:
    """Built on the first invocation and reused while the container is warm (one MLflow client)."""
    from functions.adapters.eventbridge import EventBridgePublisher
    from functions.adapters.registry_factory import registry_from_settings, rung_registries
    from functions.adapters.s3_artifacts import S3ArtifactStore
    from functions.adapters.sqs import QueueControl
    from functions.domain.validation import EvidenceReader

    settings = load_settings()
    registry = registry_from_settings(settings)
    policies = load_policies(Path(settings.POLICIES_DIR))
    events = EventBridgePublisher(bus_name=settings.EVENT_BUS_NAME, source=settings.EVENT_SOURCE)
    dry_run_replays = settings.REPLAY_ALIAS_MOVES == "dry-run"
    artifacts = S3ArtifactStore()
    keeper = AliasKeeper(
        policies,
        registry=registry,
        reader=EvidenceReader(bucket=settings.ARTIFACT_BUCKET, registry=registry, artifacts=artifacts),
        events=events,
        dry_run_replays=dry_run_replays,
    )

    registry_at = rung_registries(policies)

    @lru_cache(maxsize=8)
    def side(uri: str) -> Side:
        """A ladder rung's other registry and its alias keeper (one client per URI while the container is warm)."""
        there = registry_at(uri)
        reader = EvidenceReader(bucket=settings.ARTIFACT_BUCKET, registry=there, artifacts=artifacts)
        return Side(
            there,
            AliasKeeper(policies, registry=there, reader=reader, events=events, dry_run_replays=dry_run_replays),
        )

    climber = Climber(
        policies, registry=registry, keeper=keeper, events=events, dry_run_replays=dry_run_replays, sides=side
    )
    queue = QueueControl(queue_url=settings.QUEUE_URL, dead_letter_queue_url=settings.DEAD_LETTER_QUEUE_URL)
    return Dependencies(keeper=keeper, queue=queue, climber=climber)


build_into_snapshot(_dependencies)
