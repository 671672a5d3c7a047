"""Climbing a promotion ladder: copy a version forward one environment, exactly once, and move that rung's aliases.

The ladder is in the policy of the model versions are registered in (`functions.domain.ladder_policy`). A request
(`Environment Promotion Requested`, from `python -m ops promote <model> <version> --to <env>`) names a version in
any environment below the target; `Climber.check` finds its copy at the rung just below the target (through the
copies' lineage), and refuses, with a reason the command and the dead-letter queue show, a version that did not
pass there, that lacks its approval or has not stood there long enough. `Climber.promote` then:

1. finds an earlier copy in the target model by its source (`models:/<model>/<version>`, which MLflow's
   `copy_model_version` gives every copy) or, on a registry that rewrites sources, by its upload's identity tag;
2. copies only when there is none (`ModelRegistry.copy_version`); a copy found without its lineage tags (a copy
   that failed half-way) is completed, never made again;
3. writes the lineage tags (`functions.domain.tags.LADDER_*`), `ladder.environment` last, so a copy is complete
   exactly when that tag names its environment;
4. moves the rung's aliases through the `AliasKeeper` (history, `Model Alias Moved`), and announces
   `Model Version Promoted` when the copy was made or completed.

MLflow's `copy_model_version` copies the source version's tags (mlflow/store/model_registry/abstract_store.py,
`AbstractStore.copy_model_version`: `tags=[ModelVersionTag(k, v) for k, v in src_mv.tags.items()]`), so a copy
carries the source's verdict (`validation.status` passed: the verdict it was promoted on), its origin and
`registered_by` (so the webhook route ignores it), and its `approval.pending.*` marks, which are removed. With
`revalidate: true` the carried verdict is removed too and the gate runs on the copy (`Validation Requested`); the
rung's aliases move on a later request once the copy's own verdict passed, and a failed re-check stops it there.

A rung in another registry (`registry_uri`: another MLflow server) cannot be reached by `copy_model_version`, which
resolves its `models:/` source in the target's own registry. There the version is created (`create_version`) with
its files' real location as its source (`functions.domain.validation.files_source`: the upload's `s3://` prefix),
the source's tags and no run or logged model; an earlier one is found by that source and its lineage. Its aliases
move through that registry's `AliasKeeper` (`Side`). The source model's `autopilot.ladder_history` tag records each
promotion out of it (`ops history`). Every call is made in the request's MLflow workspace, in each registry.

The aliases route's FIFO queue hands requests over one at a time, so two requests for one version never copy twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from functions.domain.aliases import AliasKeeper, not_passed
from functions.domain.errors import Rejected
from functions.domain.events import version_event
from functions.domain.ladder_policy import LadderRule, Rung
from functions.domain.policy import PolicySet
from functions.domain.ports import EventPublisher, ModelRegistry, VersionInfo, copy_source
from functions.domain.promotion import AUTOPILOT, HistoryEntry, append_history, parse_history, tenure
from functions.domain.tags import (
    IDENTITY_TAG,
    LADDER_APPROVER_TAG,
    LADDER_CORRELATION_TAG,
    LADDER_ENVIRONMENT_TAG,
    LADDER_HISTORY_TAG,
    LADDER_PROMOTED_AT_TAG,
    LADDER_SOURCE_ENVIRONMENT_TAG,
    LADDER_SOURCE_MODEL_TAG,
    LADDER_SOURCE_VERDICT_TAG,
    LADDER_SOURCE_VERSION_TAG,
    PENDING_TAG_PREFIX,
    TAG_STATUS,
    TAG_VERDICT,
    history_tag,
)
from functions.domain.validation import files_source, verdict_record, verdict_time
from functions.models.events import (
    EnvironmentPromotionRequested,
    ModelVersionPromoted,
    ModelVersionValidated,
    PromotionRequested,
    ValidationRequested,
)


@dataclass(frozen=True)
class Position:
    """Where a registered model stands: its ladder (held by the policy named `home`) and its rung."""

    home: str
    ladder: LadderRule
    rung: Rung


def locate(policies: PolicySet, model_name: str) -> Position | None:
    """The ladder and rung of `model_name` (a target of another registry never matches a name here)."""
    for name, loaded in sorted(policies.policies.items()):
        ladder = loaded.policy.ladder
        if ladder is None:
            continue
        for rung in ladder.environments:
            if rung.model == model_name and rung.registry_uri is None:
                return Position(name, ladder, rung)
    return None


def path_below(ladder: LadderRule, start: Rung, target: Rung) -> list[Rung] | None:
    """The rungs from `start` up to the rung just below `target` (inclusive), or None when `target` is not above it."""
    chain: list[Rung] = []
    rung = ladder.below(target)
    while rung is not None:
        chain.append(rung)
        if rung == start:
            return list(reversed(chain))
        rung = ladder.below(rung)
    return None


def is_complete(copy: VersionInfo, rung: Rung, source: VersionInfo) -> bool:
    """Does the copy carry its lineage (its own, not the one its source's tags brought)?"""
    tags = copy.tags
    return (
        tags.get(LADDER_ENVIRONMENT_TAG) == rung.name
        and tags.get(LADDER_SOURCE_MODEL_TAG) == source.model_name
        and tags.get(LADDER_SOURCE_VERSION_TAG) == source.version
    )


def entered_at(version: VersionInfo) -> datetime | None:
    """When the version entered its environment: copied there, or (in the first) when it passed its gate."""
    text = version.tags.get(LADDER_PROMOTED_AT_TAG) or verdict_time(version.tags)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


CHALLENGER = "challenger"
"""The alias `requires.min_challenger_hours` counts the hours of, at the rung below."""

RegistryAt = Callable[[str], ModelRegistry]
"""The registry of a rung's `registry_uri` (another MLflow server); `Rejected`/`Unavailable` when it has none."""


def no_other_registry(uri: str) -> ModelRegistry:
    raise Rejected("other_registry_unsupported", f"this function reaches no registry but its own, not {uri}")


@dataclass(frozen=True)
class Step:
    """A promotion the ladder allows: copy `source` (standing at `below`) into `target`'s model."""

    source: VersionInfo
    below: Rung
    target: Rung
    existing: VersionInfo | None
    """The copy already in the target model (complete or not), if any."""
    source_registry: ModelRegistry
    """Where `source` is (the functions' own registry, or the one of `below.registry_uri`)."""
    registry: ModelRegistry
    """Where the target model is."""
    files: str
    """Across registries: the source's files (its upload's location, followed back through copies), which a copy
    there is registered with as its source and both registries' users can read ("" within one registry)."""

    @property
    def across(self) -> bool:
        """Does the copy go into another registry (so MLflow's `copy_model_version` cannot make it)?"""
        return self.below.registry_uri != self.target.registry_uri


@dataclass(frozen=True)
class Climb:
    action: str  # promoted, kept, validating, dry_run
    environment: str
    model: str
    version: str | None
    reason: str
    aliases: tuple[str, ...] = ()
    """The aliases moved in the target model by this request."""


def check_promotion(
    policies: PolicySet,
    registry: ModelRegistry,
    model: str,
    number: str,
    environment: str,
    *,
    approver: str | None,
    now: datetime,
    registry_at: RegistryAt = no_other_registry,
) -> Step:
    """The promotion of `model` v`number` to `environment`, or `Rejected` with why not. Reads only: the function
    and `python -m ops promote --to` (which refuses up front) both call it. `registry` is the functions' own;
    `registry_at` gives the registry of a rung in another one."""
    position = locate(policies, model)
    if position is None:
        raise Rejected("not_on_a_ladder", f"{model} is on no promotion ladder (a policy's `ladder:` names its models)")
    ladder = position.ladder
    target = ladder.rung(environment)
    if target is None:
        names = ", ".join(rung.name for rung in ladder.environments)
        raise Rejected(
            "unknown_environment", f"{environment!r} is no environment of {position.home}'s ladder ({names})"
        )
    chain = path_below(ladder, position.rung, target)
    if chain is None:
        raise Rejected(
            "not_above",
            f"{model} is the {position.rung.name} environment; {target.name} is not a rung above it on its ladder",
        )

    def at(rung: Rung) -> ModelRegistry:
        return registry_at(rung.registry_uri) if rung.registry_uri else registry

    version = registry.get_version(model, number)
    if version is None:
        raise Rejected("unknown_version", f"cannot promote {model} v{number}: no such version")
    here, below = registry, chain[0]
    for rung in chain[1:]:
        there, across = at(rung), rung.registry_uri != below.registry_uri
        copy = copy_in(there, rung, version, files_source(here, version.source) if across else "", across=across)
        if copy is None or not is_complete(copy, rung, version):
            raise Rejected(
                "not_at_rung_below",
                f"{model} v{number} has not reached {rung.name}: promote it there first "
                f"(ops promote {model} {number} --to {rung.name})",
            )
        version, here, below = copy, there, rung
    refusal = not_passed(version, f"promote to {target.name}")
    if refusal:
        raise Rejected("not_passed", f"{refusal} at {below.name}")
    if target.requires.approval and not approver:
        raise Rejected("approval_required", f"entering {target.name} needs an approver (--approver NAME)")
    check_time(version, below, target, now)
    check_challenger(here, version, below, target, now)
    across = target.registry_uri != below.registry_uri
    files = files_source(here, version.source) if across else ""
    if across and not files.startswith("s3://"):
        raise Rejected(
            "files_unknown",
            f"cannot register {version.model_name} v{version.version} in {target.registry_uri}: its files' location "
            f"is unknown (source {version.source!r} leads to {files!r}, not an s3:// location)",
        )
    there = at(target)
    existing = copy_in(there, target, version, files, across=across)
    if existing is not None and target.revalidate and is_complete(existing, target, version):
        status = existing.tags.get(TAG_STATUS)
        if status and status != "passed":
            reasons = verdict_record(existing.tags).get("reasons", "")
            raise Rejected(
                "failed_at_target",
                f"{existing.model_name} v{existing.version} failed its re-check in {target.name}: {reasons}",
            )
    return Step(version, below, target, existing, here, there, files)


def copy_in(
    registry: ModelRegistry, rung: Rung, source: VersionInfo, files: str, *, across: bool
) -> VersionInfo | None:
    """The copy of `source` in the rung's model (in `registry`, the rung's own), if any.

    In the source's registry, by the source MLflow gives a copy (`models:/<model>/<version>`); in another, by the
    files' location it was registered with. Either way also by the upload's identity (on a registry that rewrites
    sources), and the copy found must name `source` in its lineage, or carry none yet (a copy made half-way)."""
    identity = source.tags.get(IDENTITY_TAG, "")
    sources = [files] if across else [copy_source(source.model_name, source.version)]
    found = registry.find_version(rung.model or "", sources, identity)
    if found is None or not across:
        return found
    lineage = (found.tags.get(LADDER_SOURCE_MODEL_TAG), found.tags.get(LADDER_SOURCE_VERSION_TAG))
    unfinished = found.tags.get(LADDER_ENVIRONMENT_TAG) != rung.name
    return found if unfinished or lineage == (source.model_name, source.version) else None


def check_time(version: VersionInfo, below: Rung, target: Rung, now: datetime) -> None:
    hours = target.requires.min_hours
    if not hours:
        return
    since = entered_at(version)
    if since is None:
        raise Rejected("too_early", f"entering {target.name} needs {hours:g}h at {below.name}: entry time unknown")
    ready = since + timedelta(hours=hours)
    if now < ready:
        stood = (now - since).total_seconds() / 3600
        raise Rejected(
            "too_early",
            f"entering {target.name} needs {hours:g}h at {below.name}; {version.model_name} v{version.version} has "
            f"stood there {stood:.1f}h (eligible from {ready.isoformat(timespec='seconds')})",
        )


def check_challenger(registry: ModelRegistry, version: VersionInfo, below: Rung, target: Rung, now: datetime) -> None:
    """`requires.min_challenger_hours`: hours as `challenger` at the rung below, from that alias's history there."""
    hours = target.requires.min_challenger_hours
    if not hours:
        return
    model = registry.get_model(version.model_name)
    history = parse_history(model.tags.get(history_tag(CHALLENGER)) if model else None)
    held = tenure(history, version.version, now)
    name = f"{version.model_name} v{version.version}"
    if held.rollback is not None:
        entry = held.rollback
        raise Rejected(
            "rolled_back",
            f"entering {target.name} needs {hours:g}h as {CHALLENGER} at {below.name} without a rollback; {CHALLENGER} "
            f"was rolled back from {name} to v{entry.version} at {entry.at} ({entry.reason})",
        )
    if held.hours is None:
        raise Rejected(
            "too_early",
            f"entering {target.name} needs {hours:g}h as {CHALLENGER} at {below.name}; {name} never held it there "
            "(by that alias's history)",
        )
    if held.hours < hours:
        raise Rejected(
            "too_early",
            f"entering {target.name} needs {hours:g}h as {CHALLENGER} at {below.name}; {name} has held it "
            f"{held.hours:.1f}h",
        )


@dataclass(frozen=True)
class Side:
    """Another registry a ladder's rung is in, and the alias keeper that moves aliases there."""

    registry: ModelRegistry
    keeper: AliasKeeper


class Climber:
    """Climbs the ladder for the aliases function; `sides` gives the registry (and its alias keeper) of a rung in
    another registry, by its `registry_uri` (None: rungs in other registries are refused)."""

    def __init__(
        self,
        policies: PolicySet,
        *,
        registry: ModelRegistry,
        keeper: AliasKeeper,
        events: EventPublisher,
        dry_run_replays: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sides: Callable[[str], Side] | None = None,
    ) -> None:
        self._policies = policies
        self._registry = registry
        self._keeper = keeper
        self._events = events
        self._dry_run_replays = dry_run_replays
        self._now = now
        self._sides = sides

    def _registry_at(self, uri: str) -> ModelRegistry:
        return self._side(uri).registry

    def _side(self, uri: str) -> Side:
        if self._sides is None:
            no_other_registry(uri)
        assert self._sides is not None  # nosec B101: no_other_registry raised otherwise
        return self._sides(uri)

    def _keeper_of(self, rung: Rung) -> AliasKeeper:
        return self._side(rung.registry_uri).keeper if rung.registry_uri else self._keeper

    @contextmanager
    def _in_workspace(self, workspace: str | None, *rungs: Rung) -> Iterator[None]:
        """The event's MLflow workspace for every registry the request touches (the functions' own, and those of
        `rungs` in another registry): the same workspace name in each."""
        with ExitStack() as stack:
            stack.enter_context(self._registry.in_workspace(workspace))
            for uri in {rung.registry_uri for rung in rungs if rung.registry_uri}:
                stack.enter_context(self._registry_at(uri).in_workspace(workspace))
            yield

    def check(
        self, model: str, number: str, environment: str, approver: str | None, workspace: str | None = None
    ) -> Step:
        """The promotion of `model` v`number` to `environment`, or `Rejected` with why not. Reads only, in
        `workspace` in each registry it reads (another one's is entered when first read)."""
        with ExitStack() as stack:
            stack.enter_context(self._registry.in_workspace(workspace))
            entered: dict[str, ModelRegistry] = {}

            def registry_at(uri: str) -> ModelRegistry:
                if uri not in entered:
                    entered[uri] = self._registry_at(uri)
                    stack.enter_context(entered[uri].in_workspace(workspace))
                return entered[uri]

            return check_promotion(
                self._policies,
                self._registry,
                model,
                number,
                environment,
                approver=approver,
                now=self._now(),
                registry_at=registry_at,
            )

    def promote(self, request: EnvironmentPromotionRequested) -> Climb:
        step = self.check(request.model_name, request.version, request.environment, request.approver, request.workspace)
        with self._in_workspace(request.workspace, step.below, step.target):
            return self._promote(step, request)

    def _promote(self, step: Step, request: EnvironmentPromotionRequested) -> Climb:
        target, source = step.target, step.source
        model = target.model or ""
        if self._dry_run_replays and request.replay_name:
            number = step.existing.version if step.existing else None
            return Climb("dry_run", target.name, model, number, f"replay {request.replay_name}: would promote")
        actor = request.approver or request.requested_by
        copy = step.existing or self._copy(step)
        completed = not is_complete(copy, target, source)
        if completed:
            copy = self._complete(copy, step, request, actor)
        self._record_at_source(copy, step, request, actor)
        if target.revalidate and (completed or copy.tags.get(TAG_STATUS) is None):
            if completed:
                self._announce(copy, step, request, actor)
                self._events.publish(
                    ValidationRequested(
                        model_name=model,
                        version=copy.version,
                        requested_by=actor,
                        correlation_id=request.correlation_id,
                        workspace=request.workspace,
                    )
                )
            why = f"v{copy.version} is being validated in {target.name}: its aliases move when it passes there"
            return Climb("validating", target.name, model, copy.version, why)
        keeper = self._keeper_of(target)
        moved = tuple(
            alias
            for alias in target.aliases
            if self._move(keeper, copy, alias, actor, request.correlation_id, request.workspace)
        )
        if completed:
            self._announce(copy, step, request, actor)
        action = "promoted" if completed or moved else "kept"
        where = f" in {target.registry_uri}" if target.registry_uri else ""
        reason = f"{source.model_name} v{source.version} ({step.below.name}) -> {model} v{copy.version}{where}"
        return Climb(action, target.name, model, copy.version, reason, moved)

    def _copy(self, step: Step) -> VersionInfo:
        """A new version of the target model from the source, as MLflow's `copy_model_version` makes one.

        Across registries MLflow cannot copy (its `copy_model_version` reads the source `models:/` URI from the
        target's own registry: mlflow/store/model_registry/abstract_store.py, `AbstractStore.copy_model_version`),
        so the version is created there with its files' real location as its source and the source's tags, as
        that copy would carry them; its run and logged model stay in the source's registry (their ids would name
        nothing in the target's), and the lineage tags name the source."""
        source, model = step.source, step.target.model or ""
        if not step.across:
            return step.registry.copy_version(source.model_name, source.version, model)
        return step.registry.create_version(model, step.files, run_id=None, model_id=None, tags=dict(source.tags))

    def on_verdict(self, verdict: ModelVersionValidated) -> Climb | None:
        """A passed re-check of a copy at a rung that revalidates: move that rung's aliases (None: not such a copy)."""
        with self._registry.in_workspace(verdict.workspace):
            return self._on_verdict(verdict)

    def _on_verdict(self, verdict: ModelVersionValidated) -> Climb | None:
        position = locate(self._policies, verdict.model_name)
        if verdict.status != "passed" or position is None or not position.rung.revalidate:
            return None
        copy = self._registry.get_version(verdict.model_name, verdict.version)
        rung = position.rung
        if copy is None or copy.tags.get(LADDER_ENVIRONMENT_TAG) != rung.name or copy.tags.get(TAG_STATUS) != "passed":
            return None
        if self._dry_run_replays and verdict.replay_name:
            return Climb("dry_run", rung.name, copy.model_name, copy.version, f"replay {verdict.replay_name}")
        actor = copy.tags.get(LADDER_APPROVER_TAG) or AUTOPILOT
        moved = tuple(
            alias
            for alias in rung.aliases
            if self._move(self._keeper, copy, alias, actor, verdict.correlation_id, verdict.workspace)
        )
        why = f"passed its re-check in {rung.name}"
        return Climb("promoted" if moved else "kept", rung.name, copy.model_name, copy.version, why, moved)

    # --- shared -----------------------------------------------------------------------------------

    def _complete(
        self, copy: VersionInfo, step: Step, request: EnvironmentPromotionRequested, actor: str
    ) -> VersionInfo:
        """Write the copy's lineage (its environment last), after removing what its source's tags brought along."""
        model = copy.model_name
        stale = [key for key in copy.tags if key.startswith(PENDING_TAG_PREFIX)]
        if step.target.revalidate:
            stale += [key for key in (TAG_STATUS, TAG_VERDICT) if key in copy.tags]  # the status first
        for key in stale:
            step.registry.delete_version_tag(model, copy.version, key)
        source = step.source
        lineage = {
            LADDER_SOURCE_ENVIRONMENT_TAG: step.below.name,
            LADDER_SOURCE_MODEL_TAG: source.model_name,
            LADDER_SOURCE_VERSION_TAG: source.version,
            LADDER_SOURCE_VERDICT_TAG: f"{source.tags.get(TAG_STATUS, '')}@{verdict_time(source.tags)}",
            LADDER_CORRELATION_TAG: request.correlation_id,
            LADDER_APPROVER_TAG: actor,
            LADDER_PROMOTED_AT_TAG: self._now().isoformat(timespec="seconds"),
            LADDER_ENVIRONMENT_TAG: step.target.name,
        }
        step.registry.set_version_tags(model, copy.version, lineage)
        tags = {key: value for key, value in copy.tags.items() if key not in stale}
        return VersionInfo(copy.model_name, copy.version, copy.source, copy.run_id, {**tags, **lineage}, copy.model_id)

    def _move(
        self, keeper: AliasKeeper, copy: VersionInfo, alias: str, actor: str, correlation_id: str, workspace: str | None
    ) -> bool:
        request = PromotionRequested(
            model_name=copy.model_name,
            version=copy.version,
            alias=alias,
            approver=actor,
            correlation_id=correlation_id,
            workspace=workspace,
        )
        return keeper.promote(request).action == "moved"

    def _record_at_source(
        self, copy: VersionInfo, step: Step, request: EnvironmentPromotionRequested, actor: str
    ) -> None:
        """The history on the source's side: its model's ladder history says the version went to the target (once)."""
        source, target = step.source, step.target
        model = step.source_registry.get_model(source.model_name)
        history = parse_history(model.tags.get(LADDER_HISTORY_TAG) if model else None)
        went = f"promoted to {target.name}:"
        if any(entry.version == source.version and entry.reason.startswith(went) for entry in history):
            return
        where = f" in {target.registry_uri}" if target.registry_uri else ""
        entry = HistoryEntry(
            version=source.version,
            previous=None,
            reason=f"{went} {copy.model_name} v{copy.version}{where}",
            actor=actor,
            correlation_id=request.correlation_id,
            at=self._now().isoformat(timespec="seconds"),
        )
        step.source_registry.set_model_tag(source.model_name, LADDER_HISTORY_TAG, append_history(history, entry))

    def _announce(self, copy: VersionInfo, step: Step, request: EnvironmentPromotionRequested, actor: str) -> None:
        self._events.publish(
            version_event(
                ModelVersionPromoted,
                copy,
                correlation_id=request.correlation_id,
                from_environment=step.below.name,
                to_environment=step.target.name,
                source_model=step.source.model_name,
                source_version=step.source.version,
                actor=actor,
                workspace=request.workspace,
            )
        )
