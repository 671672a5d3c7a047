"""Moving aliases: on passed verdicts, on approved promotions and on rollbacks, with history.

Every decision re-reads the registry first (the version's verdict tags, the alias holder, the history),
so a decision made late, twice or out of order is still right: an alias never moves to a version that is
not `passed` now, never to a version the holder outranks, and never twice for one verdict. The route's
FIFO queue hands this class one event at a time, so two decisions never interleave.

Refusals of explicit requests (promote a failed version, roll back with no history) raise `Rejected`:
the request is dead-lettered with its reason, and `python -m ops` refuses the same cases up front.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from functions.domain.errors import Rejected
from functions.domain.events import version_event
from functions.domain.policy import LoadedPolicy, PolicySet
from functions.domain.ports import EventPublisher, ModelInfo, ModelRegistry, VersionInfo
from functions.domain.promotion import (
    AUTOPILOT,
    HistoryEntry,
    Standing,
    append_history,
    applied,
    outranks,
    parse_history,
    rollback_reason,
    rollback_target,
)
from functions.domain.reference import DatasetVersion, cached_score, scored_on
from functions.domain.reference_policy import ReferenceRule
from functions.domain.tags import BACKFILL_HOLD_ALIASES, BACKFILL_TAG, TAG_STATUS, history_tag, pending_tag
from functions.domain.validation import EvidenceReader, verdict_time
from functions.models.events import (
    ModelAliasMoved,
    ModelVersionValidated,
    PromotionPending,
    PromotionRequested,
    RollbackRequested,
)


@dataclass(frozen=True)
class Decision:
    alias: str
    action: str  # moved, pending, kept, dry_run
    version: str
    previous: str | None = None
    reason: str = ""


class AliasKeeper:
    def __init__(
        self,
        policies: PolicySet,
        *,
        registry: ModelRegistry,
        reader: EvidenceReader,
        events: EventPublisher,
        dry_run_replays: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._policies = policies
        self._registry = registry
        self._reader = reader
        self._events = events
        self._dry_run_replays = dry_run_replays
        self._now = now
        self.warnings: list[str] = []
        self._workspace: str | None = None
        """The MLflow workspace of the event being handled (the route hands the keeper one event at a time)."""

    @contextmanager
    def _in_workspace(self, workspace: str | None) -> Iterator[None]:
        """Every registry read and write of one event, and the events it emits, in the event's MLflow workspace (the
        evidence reader shares the registry, so its reads are made there too)."""
        self._workspace = workspace
        try:
            with self._registry.in_workspace(workspace):
                yield
        finally:
            self._workspace = None

    # --- a passed verdict -------------------------------------------------------------------------

    def on_verdict(self, verdict: ModelVersionValidated) -> list[Decision]:
        """Set the aliases the policy names for a passed version; nothing for a failed one."""
        if verdict.status != "passed":
            return []
        with self._in_workspace(verdict.workspace):
            return self._on_verdict(verdict)

    def _on_verdict(self, verdict: ModelVersionValidated) -> list[Decision]:
        version = self._registry.get_version(verdict.model_name, verdict.version)
        if version is None or version.tags.get(TAG_STATUS) != "passed":
            # Deleted, re-validated as failed since this verdict, or a forged verdict: the registry decides.
            found = "no such version" if version is None else f"its status is {version.tags.get(TAG_STATUS)}"
            self.warnings.append(
                f"passed verdict ignored: {verdict.model_name} v{verdict.version} in the registry: {found}"
            )
            return []
        loaded = self._policies.for_model(verdict.model_name)
        verdict_id = f"{version.version}@{verdict_time(version.tags)}"
        dry_run = bool(verdict.replay_name) and self._dry_run_replays
        aliases = [(alias, mode) for alias, mode in sorted(loaded.policy.promotion.aliases.items()) if mode != "manual"]
        if not aliases:
            return []
        if version.tags.get(BACKFILL_TAG) == BACKFILL_HOLD_ALIASES:
            # Backfilled without --promote: validated, but no alias moves by surprise; `ops promote` still may.
            why = "backfilled without --promote: only `ops promote` moves an alias to it"
            return [Decision(alias, "kept", version.version, None, why) for alias, _ in aliases]
        # One read gives every alias holder and history; each alias below touches only its own alias and history tag.
        model = self._model(version.model_name)
        return [
            self._consider(version, alias, mode, loaded, verdict, verdict_id, dry_run, model) for alias, mode in aliases
        ]

    def _consider(
        self,
        version: VersionInfo,
        alias: str,
        mode: str,
        loaded: LoadedPolicy,
        verdict: ModelVersionValidated,
        verdict_id: str,
        dry_run: bool,
        model: ModelInfo,
    ) -> Decision:
        name = version.model_name
        holder = model.aliases.get(alias)
        if holder == version.version:
            return Decision(alias, "kept", version.version, holder, "already holds it")
        history = parse_history(model.tags.get(history_tag(alias)))
        if applied(history, verdict_id):
            last = history[-1]
            if last.verdict == verdict_id and holder == last.previous and not dry_run:  # interrupted mid-move
                self._apply(version, alias, last, loaded)
                return Decision(alias, "moved", version.version, last.previous, f"{last.reason} (completed)")
            return Decision(alias, "kept", version.version, holder, "verdict already applied")
        compare = loaded.policy.compare
        metric = compare.metric if compare else None
        rule = loaded.policy.reference
        # With reference data the gate compared scores on the platform's rows: rank by those, cached on each version.
        dataset = scored_on(rule, [check.source for check in verdict.checks]) if rule else None
        scores = (rule, dataset) if rule and dataset else None
        candidate = Standing(version.version, self._metric(version, metric, scores))
        incumbent = Standing(holder, self._holder_metric(name, holder, metric, scores)) if holder else None
        strict = mode in ("auto", "approval") and compare is not None and compare.alias == alias
        if not outranks(
            candidate,
            incumbent,
            direction=compare.direction if compare else "higher",
            min_improvement=compare.min_improvement if strict and compare else 0.0,
            relative=bool(strict and compare and compare.improvement == "relative"),
        ):
            why = f"v{holder} outranks it" if holder else "no better than the holder"
            return Decision(alias, "kept", version.version, holder, why)
        previous = holder
        reason = _verdict_reason(mode, alias, metric, candidate, incumbent)
        if dry_run:
            return Decision(alias, "dry_run", version.version, previous, f"replay {verdict.replay_name}: {reason}")
        if mode == "approval":
            self._registry.set_version_tags(name, version.version, {pending_tag(alias): verdict_id})
            self._events.publish(
                version_event(
                    PromotionPending,
                    version,
                    correlation_id=verdict.correlation_id,
                    alias=alias,
                    reason=f"{reason}; awaiting approval",
                    workspace=self._workspace,
                )
            )
            return Decision(alias, "pending", version.version, previous, reason)
        self._move(version, alias, previous, history, reason, AUTOPILOT, verdict.correlation_id, loaded, verdict_id)
        return Decision(alias, "moved", version.version, previous, reason)

    # --- explicit requests ------------------------------------------------------------------------

    def promote(self, request: PromotionRequested) -> Decision:
        """Move `alias` to a version an approver names, after re-checking its verdict."""
        with self._in_workspace(request.workspace):
            return self._promote(request)

    def _promote(self, request: PromotionRequested) -> Decision:
        version = self._passed_version(request.model_name, request.version, "promote")
        loaded = self._policies.for_model(request.model_name)
        model = self._model(request.model_name)
        previous = model.aliases.get(request.alias)
        if previous == version.version:
            return Decision(request.alias, "kept", version.version, previous, "already holds it")
        history = parse_history(model.tags.get(history_tag(request.alias)))
        reason = f"promoted by {request.approver}"
        if self._dry_run_replays and request.replay_name:
            return Decision(request.alias, "dry_run", version.version, previous, f"replay {request.replay_name}")
        self._move(version, request.alias, previous, history, reason, request.approver, request.correlation_id, loaded)
        self._registry.delete_version_tag(version.model_name, version.version, pending_tag(request.alias))
        return Decision(request.alias, "moved", version.version, previous, reason)

    def rollback(self, request: RollbackRequested) -> Decision:
        """Move `alias` back to its previous holder (from the history), or to a named version that passed."""
        with self._in_workspace(request.workspace):
            return self._rollback(request)

    def _rollback(self, request: RollbackRequested) -> Decision:
        name, alias = request.model_name, request.alias
        model = self._model(name)
        previous = model.aliases.get(alias)
        history = parse_history(model.tags.get(history_tag(alias)))
        target = request.version or rollback_target(history, previous)
        if target is None:
            raise Rejected(
                "nothing_to_roll_back_to",
                f"{name}@{alias} has no previous holder in its history; name the version to roll back to",
            )
        version = self._passed_version(name, target, "roll back to")
        if previous == version.version:
            return Decision(alias, "kept", version.version, previous, "already holds it")
        reason = rollback_reason(request.requested_by)
        if self._dry_run_replays and request.replay_name:
            return Decision(alias, "dry_run", version.version, previous, f"replay {request.replay_name}")
        loaded = self._policies.for_model(name)
        self._move(version, alias, previous, history, reason, request.requested_by, request.correlation_id, loaded)
        return Decision(alias, "moved", version.version, previous, reason)

    # --- shared -----------------------------------------------------------------------------------

    def _model(self, name: str) -> ModelInfo:
        """The registered model's alias holders and histories (empty for a model deleted since)."""
        return self._registry.get_model(name) or ModelInfo(name)

    def _passed_version(self, name: str, number: str, verb: str) -> VersionInfo:
        version = self._registry.get_version(name, number)
        if version is None:
            raise Rejected("unknown_version", f"cannot {verb} {name} v{number}: no such version")
        refusal = not_passed(version, verb)
        if refusal:
            raise Rejected("not_passed", refusal)
        return version

    def _move(
        self,
        version: VersionInfo,
        alias: str,
        previous: str | None,
        history: list[HistoryEntry],
        reason: str,
        actor: str,
        correlation_id: str,
        loaded: LoadedPolicy,
        verdict_id: str | None = None,
    ) -> None:
        name = version.model_name
        entry = HistoryEntry(
            version=version.version,
            previous=previous,
            reason=reason,
            actor=actor,
            correlation_id=correlation_id,
            at=self._now().isoformat(timespec="seconds"),
            verdict=verdict_id,
        )
        # History first: a crash after it leaves a record without the move, which a retry completes (a verdict's
        # retry finds its entry last; a request's retry finds the alias unmoved and moves it).
        self._registry.set_model_tag(name, history_tag(alias), append_history(history, entry))
        self._apply(version, alias, entry, loaded)

    def _apply(self, version: VersionInfo, alias: str, entry: HistoryEntry, loaded: LoadedPolicy) -> None:
        """Point the alias at the version (and mirror it to a stage where the policy says so), then announce it."""
        name = version.model_name
        self._registry.set_alias(name, alias, version.version)
        stage = loaded.policy.promotion.stages.get(alias)
        if stage:
            self.warnings.append(f"stage {stage} mirrors alias {alias}: MLflow deprecated stages in 2.9")
            self._registry.transition_stage(name, version.version, stage)
        self._events.publish(
            version_event(
                ModelAliasMoved,
                version,
                correlation_id=entry.correlation_id,
                alias=alias,
                previous_version=entry.previous,
                reason=entry.reason,
                actor=entry.actor,
                workspace=self._workspace,
            )
        )

    def _metric(
        self, version: VersionInfo, metric: str | None, scores: tuple[ReferenceRule, DatasetVersion] | None = None
    ) -> float | None:
        if metric is None:
            return None
        if scores is not None:
            cached = cached_score(version.tags, *scores)
            return cached.scores.get(metric) if cached else None
        observed = self._reader.metric(version, metric)
        return observed.value if observed else None

    def _holder_metric(
        self, name: str, holder: str, metric: str | None, scores: tuple[ReferenceRule, DatasetVersion] | None = None
    ) -> float | None:
        """The holder's metric; its version is read only when the policy compares by a metric."""
        if metric is None:
            return None
        version = self._registry.get_version(name, holder)
        return self._metric(version, metric, scores) if version else None


def not_passed(version: VersionInfo, verb: str) -> str | None:
    """Why an alias may not move to this version (None when its verdict is `passed`)."""
    status = version.tags.get(TAG_STATUS)
    if status == "passed":
        return None
    shown = status or "missing (not validated)"
    return f"cannot {verb} {version.model_name} v{version.version}: its validation status is {shown}, not passed"


def _verdict_reason(mode: str, alias: str, metric: str | None, candidate: Standing, holder: Standing | None) -> str:
    if holder is None:
        return f"{mode}: passed validation; {alias} had no holder"
    if metric is None or candidate.metric is None:
        return f"{mode}: passed validation; newer than v{holder.version}"
    theirs = f"{holder.metric:g}" if holder.metric is not None else "unknown"
    return f"{mode}: passed validation; {metric} {candidate.metric:g} outranks v{holder.version} ({theirs})"
