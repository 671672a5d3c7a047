"""Validating a registered version against its model's policy, and recording the verdict.

`Validator.validate` gathers the evidence (metrics from the logged model, the run and `metrics.json`,
in that order; the MLmodel's signature; the files beside it; the run's tags and dataset inputs; the
baseline version holding the policy's alias), evaluates the policy (`functions.domain.policy`), tags
the version with the verdict and emits `Model Version Validated`.

A failed gate is a business result, returned and emitted, never an exception. A registry or S3 outage
raises `Unavailable` (the queue retries). Running it again with the same policy and evidence writes no
tag: only the event is emitted again (consumers are idempotent), so a retry after a crash between the
two still gets its event out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from functions.domain.errors import Rejected
from functions.domain.events import version_event
from functions.domain.mlmodel import MLmodel, parse_mlmodel
from functions.domain.policy import Check, Evidence, LoadedPolicy, Observed, Policy, PolicySet, evaluate
from functions.domain.ports import (
    ArtifactStore,
    EventPublisher,
    ModelProofs,
    ModelRegistry,
    ObjectMissing,
    ObjectTooLarge,
    RunInfo,
    VersionInfo,
)
from functions.domain.proof import unprovable
from functions.domain.reference import ReferenceGate
from functions.domain.tags import TAG_STATUS, TAG_VERDICT
from functions.models.events import ArtifactOrigin, CheckResult, ModelVersionValidated

MAX_REASONS = 600
"""Characters of the reasons kept in the tag, which leaves room for the rest of the verdict within Unity Catalog's
1,000-character values (unless the policy file's name is very long); the `Model Version Validated` event carries
every check in full."""
METRICS_FILE = "metrics.json"
MAX_METRICS_FILE_BYTES = 1024 * 1024
MLMODEL_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ValidationRequest:
    model_name: str
    version: str
    correlation_id: str
    artifact: ArtifactOrigin | None = None
    """Where the MLmodel was uploaded (from `Model Version Registered`), when known."""
    replay_name: str | None = None
    workspace: str | None = None
    """The MLflow workspace the version lives in (the event's `workspace`); None: the client's default."""


@dataclass(frozen=True)
class Verdict:
    status: str  # passed, failed, or skipped (the version no longer exists)
    checks: tuple[Check, ...] = ()
    policy: str | None = None
    changed: bool = False

    @property
    def reasons(self) -> list[str]:
        """One line per failed check: the first of its message (a proof's check goes on with the error's last lines,
        which the event's `checks` carry in full; the tag and the failed-verdict notification get the line)."""
        return [check.message.split("\n", 1)[0] for check in self.checks if not check.passed]


@dataclass(frozen=True)
class _ModelDir:
    bucket: str
    prefix: str  # ends with "/"


@dataclass
class MetricReading:
    """What the metric sources hold: each name's first value, every non-finite value, and the run that was read."""

    metrics: dict[str, Observed] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    non_finite: list[tuple[str, Observed]] = field(default_factory=list)
    run: RunInfo | None = None

    def add(self, source: str, values: Mapping[str, float]) -> None:
        for name, value in sorted(values.items()):
            observed = Observed(value, source)
            self.metrics.setdefault(name, observed)
            if not math.isfinite(value):
                self.non_finite.append((name, observed))


class EvidenceReader:
    """Reads what the checks look at: the model directory, the MLmodel, metrics from their three sources."""

    def __init__(self, *, bucket: str, registry: ModelRegistry, artifacts: ArtifactStore) -> None:
        self._bucket = bucket
        self._registry = registry
        self._artifacts = artifacts

    def metric(self, version: VersionInfo, name: str) -> Observed | None:
        """One metric of a version, from the first source that has it (None when none has it)."""
        model_dir = self.model_dir(version, None)
        _, files = self.read_model_dir(model_dir, need_mlmodel=False)
        return self.metrics(version.model_id, version.run_id, model_dir, files).metrics.get(name)

    def model_dir(self, version: VersionInfo, artifact: ArtifactOrigin | None) -> _ModelDir | None:
        if artifact and artifact.bucket == self._bucket and artifact.key.endswith("/MLmodel"):
            return _ModelDir(artifact.bucket, artifact.key[: -len("MLmodel")])
        source = files_source(self._registry, version.source)
        prefix = f"s3://{self._bucket}/"
        if source.startswith(prefix):
            return _ModelDir(self._bucket, source[len(prefix) :].rstrip("/") + "/")
        return None

    def read_model_dir(
        self, model_dir: _ModelDir | None, *, need_mlmodel: bool = True
    ) -> tuple[MLmodel | None, set[str]]:
        if model_dir is None:
            return None, set()
        keys = self._artifacts.list_keys(model_dir.bucket, model_dir.prefix)
        files = {key[len(model_dir.prefix) :] for key in keys}
        if not need_mlmodel or "MLmodel" not in files:
            return None, files
        try:
            content = self._artifacts.read(
                model_dir.bucket, f"{model_dir.prefix}MLmodel", version_id=None, max_bytes=MLMODEL_MAX_BYTES
            )
            return parse_mlmodel(content), files
        except (ObjectMissing, ObjectTooLarge, Rejected):
            return None, files

    def metrics(
        self,
        model_id: str | None,
        run_id: str | None,
        model_dir: _ModelDir | None,
        files: set[str],
        *,
        from_registry: bool = True,
    ) -> MetricReading:
        """Metrics by name with their source; the first source that has a metric wins.

        `from_registry=False` reads `metrics.json` only (a file that is there is always checked for damage).
        """
        reading = MetricReading()
        logged = self._registry.get_logged_model(model_id) if model_id and from_registry else None
        reading.run = self._registry.get_run(run_id) if run_id and from_registry else None
        reading.add("logged_model", logged.metrics if logged else {})
        reading.add("run", reading.run.metrics if reading.run else {})
        if model_dir is not None and METRICS_FILE in files:
            values, problem = self._metrics_file(model_dir)
            if problem:
                reading.problems[METRICS_FILE] = problem
            reading.add(METRICS_FILE, values)
        return reading

    def _metrics_file(self, model_dir: _ModelDir) -> tuple[dict[str, float], str | None]:
        key = f"{model_dir.prefix}{METRICS_FILE}"
        try:
            content = self._artifacts.read(model_dir.bucket, key, version_id=None, max_bytes=MAX_METRICS_FILE_BYTES)
        except ObjectTooLarge:
            return {}, f"{METRICS_FILE} is larger than {MAX_METRICS_FILE_BYTES} bytes"
        except ObjectMissing:
            return {}, None
        return parse_metrics_file(content)


class Validator:
    def __init__(
        self,
        policies: PolicySet,
        *,
        bucket: str,
        registry: ModelRegistry,
        artifacts: ArtifactStore,
        events: EventPublisher,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        proofs: ModelProofs | None = None,
    ) -> None:
        """`proofs`: how this deployment proves models (policy `proof: smoke`); None: it proves none, and a version
        whose policy asks for a proof fails with `proof_disabled`."""
        self._policies = policies
        self._proofs = proofs
        self._bucket = bucket
        self._registry = registry
        self._reader = EvidenceReader(bucket=bucket, registry=registry, artifacts=artifacts)
        self._events = events
        self._now = now
        self._reference = ReferenceGate(registry=registry, proofs=proofs, locate=self._locate)

    def validate(self, request: ValidationRequest) -> Verdict:
        # The version, its run, logged model and baseline are all read, and the verdict written, in its workspace.
        with self._registry.in_workspace(request.workspace):
            return self._validate(request)

    def _validate(self, request: ValidationRequest) -> Verdict:
        version = self._registry.get_version(request.model_name, request.version)
        if version is None:
            return Verdict("skipped")
        loaded = self._policies.for_model(request.model_name)
        if self._proofs is not None:
            self._proofs.begin()
        evidence, model_dir = self._gather(version, request, loaded)
        evaluated = evaluate(loaded.policy, evidence)
        evaluated += self._proof(loaded.policy, evidence, model_dir, evaluated)
        location = (model_dir.bucket, model_dir.prefix) if model_dir else None
        checks = tuple(evaluated + self._reference.checks(loaded.policy, version, location, self._bucket, evaluated))
        status = "passed" if all(check.passed for check in checks) else "failed"
        verdict = Verdict(status, checks, loaded.identity)
        changed = self._record(version, verdict, loaded, request.correlation_id)
        self._events.publish(
            version_event(
                ModelVersionValidated,
                version,
                correlation_id=request.correlation_id,
                model_id=version.model_id,
                replay_name=request.replay_name,
                status=status,
                reasons=verdict.reasons,
                checks=[_result(check) for check in checks],
                policy=loaded.identity,
                uploaded_at=request.artifact.uploaded_at if request.artifact else None,
                workspace=request.workspace,
            )
        )
        return Verdict(status, checks, loaded.identity, changed)

    def _proof(
        self, policy: Policy, evidence: Evidence, model_dir: _ModelDir | None, checks: list[Check]
    ) -> list[Check]:
        """The proof's checks (`proof:<stage>`) when the policy asks for one: a model that does not load fails here."""
        if not policy.proof.enabled:
            return []
        proofs = self._proofs
        reason = unprovable(
            proofs_enabled=proofs is not None,
            in_bucket=model_dir is not None,
            other_failures=sum(not check.passed for check in checks),
        )
        if reason is not None or proofs is None or model_dir is None:  # unprovable() said why when either is None
            return [reason] if reason is not None else []
        return proofs.prove(
            model_dir.bucket,
            model_dir.prefix,
            has_signature=bool(evidence.has_signature),
            missing_example=policy.proof.missing_example,
        )

    def _gather(
        self, version: VersionInfo, request: ValidationRequest, loaded: LoadedPolicy
    ) -> tuple[Evidence, _ModelDir | None]:
        reader = self._reader
        model_dir = reader.model_dir(version, request.artifact)
        mlmodel, files = reader.read_model_dir(model_dir)
        model_id = version.model_id or (mlmodel.model_id if mlmodel else None)
        run_id = version.run_id or (mlmodel.run_id if mlmodel else None)
        policy = loaded.policy
        # The registry is asked only for what the policy checks: each read is a request on every upload.
        checks_metrics = bool(policy.metrics or policy.compare or policy.finite_metrics)
        reading = reader.metrics(model_id, run_id, model_dir, files, from_registry=checks_metrics)
        run = reading.run
        if run is None and run_id and (policy.lineage.run_tags or policy.lineage.dataset_inputs):
            run = self._registry.get_run(run_id)
        evidence = Evidence(
            metrics=reading.metrics,
            metric_problems=reading.problems,
            non_finite=tuple(reading.non_finite),
            has_signature=mlmodel.has_signature if mlmodel else None,
            files=frozenset(files),
            run_tags=dict(run.tags) if run else None,
            has_dataset_inputs=bool(run and run.has_dataset_inputs),
        )
        compare = loaded.policy.compare
        if compare is None or loaded.policy.reference is not None:  # with a reference, `ReferenceGate` compares
            return evidence, model_dir
        holder = self._registry.get_alias_version(version.model_name, compare.alias)
        if holder is None:
            return evidence, model_dir
        if holder.version == version.version:
            return replace(evidence, baseline_version=holder.version, is_baseline=True), model_dir
        baseline = reader.metric(holder, compare.metric)
        return replace(evidence, baseline_version=holder.version, baseline_metric=baseline), model_dir

    def _locate(self, version: VersionInfo) -> tuple[str, str] | None:
        """A version's model directory in the artifact bucket (the reference step scores the holder from it)."""
        found = self._reader.model_dir(version, None)
        return (found.bucket, found.prefix) if found else None

    # --- verdict ----------------------------------------------------------------------------------

    def _record(self, version: VersionInfo, verdict: Verdict, loaded: LoadedPolicy, correlation_id: str) -> bool:
        """Write the verdict in two tags (two requests), unless the version already carries this one."""
        record = {
            "reasons": _truncate("; ".join(verdict.reasons)) or "all checks passed",
            "policy": loaded.file,
            "policy_sha256": loaded.sha256,
        }
        previous = verdict_record(version.tags)
        if version.tags.get(TAG_STATUS) == verdict.status and all(previous.get(k) == v for k, v in record.items()):
            return False
        record["validated_at"] = self._now().isoformat(timespec="seconds")
        record["correlation_id"] = correlation_id
        # The status goes last: a crash half-way leaves the previous verdict, never a passed status with old reasons.
        tags = {TAG_VERDICT: json.dumps(record, separators=(",", ":")), TAG_STATUS: verdict.status}
        self._registry.set_version_tags(version.model_name, version.version, tags)
        return True


MAX_COPY_HOPS = 8
"""How many copies deep a version's files are looked for (one per rung of a promotion ladder)."""


def files_source(registry: ModelRegistry, source: str) -> str:
    """Where a version's files are: its source, followed back through copies (a promotion ladder's
    `models:/<name>/<version>`) and a logged model's `models:/m-<id>` to its artifact location ("" when lost)."""
    for _ in range(MAX_COPY_HOPS):  # a copy's source names the version it was copied from
        copied_from = _copied_from(source)
        if copied_from is None:
            break
        found = registry.get_version(*copied_from)
        source = found.source if found else ""
    if source.startswith("models:/m-"):
        logged = registry.get_logged_model(source[len("models:/") :])
        source = logged.artifact_location if logged and logged.artifact_location else ""
    return source


def _copied_from(source: str) -> tuple[str, str] | None:
    """(model, version) of a copy's source `models:/<name>/<version>` (MLflow's `copy_model_version` sets it); None
    for any other source, a logged model's `models:/m-<id>` (no `/`) included."""
    if not source.startswith("models:/"):
        return None
    name, _, number = source[len("models:/") :].rpartition("/")
    return (name, number) if name and number.isdigit() else None


def verdict_record(tags: dict[str, str]) -> dict[str, str]:
    """The verdict a version's tags record (empty when it has none, or one this code cannot read)."""
    try:
        record = json.loads(tags.get(TAG_VERDICT) or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in record.items()} if isinstance(record, dict) else {}


def verdict_time(tags: dict[str, str]) -> str:
    """When the version's current verdict was recorded ("" when it has none): part of the verdict's identity."""
    return verdict_record(tags).get("validated_at", "")


def parse_metrics_file(content: bytes) -> tuple[dict[str, float], str | None]:
    """`metrics.json`: a JSON object of metric name to number. Returns the numbers and a problem, if any."""
    try:
        document = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}, f"{METRICS_FILE} is not valid JSON"
    if not isinstance(document, dict):
        return {}, f"{METRICS_FILE} is not a JSON object of metric names to numbers"
    values: dict[str, float] = {}
    bad: list[str] = []
    for name, value in document.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            bad.append(str(name)[:100])
        else:
            values[str(name)] = float(value)
    problem = f"{METRICS_FILE} holds non-numbers for: {', '.join(sorted(bad)[:10])}" if bad else None
    return values, problem


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_REASONS else text[: MAX_REASONS - 1] + "…"


def _result(check: Check) -> CheckResult:
    return CheckResult(
        name=check.name,
        passed=check.passed,
        skipped=check.skipped,
        observed=_json_safe(check.observed),
        threshold=_json_safe(check.threshold),
        source=check.source,
        message=check.message,
    )


def _json_safe(value: float | str | None) -> float | str | None:
    """NaN and infinity are not JSON: events carry them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
