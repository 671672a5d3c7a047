"""Scoring a version on the platform's reference data, beside the holder of the compared alias.

A policy's `reference:` (`functions.domain.reference_policy`) names a dataset of the artifact bucket. The gate then
scores the candidate on its rows in a proof process of its own (predict on every column but the target), scores the
current holder of `compare.alias` on the same rows (the same object version) in its own process, and compares those
numbers, not the self-reported ones. Each score is a check `reference:<metric>` whose source is
`reference:<dataset key>@<version id>`; the comparison `compare:<alias>:<metric>` carries the same source.

A version's score is cached in a version tag (`reference_tag`) per (dataset key, dataset version, target, row cap):
the holder is scored once, not once per candidate, and a candidate that becomes the holder is never scored again.

Every failure is a failed check with its reason as `observed`, never an exception (an S3 or registry outage still
raises `Unavailable`, which the queue retries).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from functions.domain.policy import Check, CompareRule, Evidence, Observed, Policy, compare_check
from functions.domain.ports import ModelProofs, ModelRegistry, VersionInfo
from functions.domain.proof import (
    ENVIRONMENT_UNRESOLVABLE,
    LOAD_FAILED,
    PREDICT_FAILED,
    PROOF_TIMEOUT,
    PYTHON_UNAVAILABLE,
    ProofOutcome,
    error_tail,
)
from functions.domain.reference_policy import ReferenceRule, dataset_format
from functions.domain.tags import REFERENCE_TAG_PREFIX

DATASET_MISSING = "dataset_missing"
DATASET_TOO_LARGE = "dataset_too_large"
DATASET_UNREADABLE = "dataset_unreadable"
DATASET_EMPTY = "dataset_empty"
TARGET_MISSING = "target_missing"
PREDICTIONS_INVALID = "predictions_invalid"
REASONS = (DATASET_MISSING, DATASET_TOO_LARGE, DATASET_UNREADABLE, DATASET_EMPTY, TARGET_MISSING, PREDICTIONS_INVALID)
"""Besides these, a scoring process fails with the proof's own reasons (environment_unresolvable, load_failed,
predict_failed, proof_timeout, too_large_for_proof)."""
CHECK = "reference"


@dataclass(frozen=True)
class DatasetVersion:
    """One version of a reference dataset: what both scores are computed on."""

    key: str
    version_id: str
    """The S3 object's version id; in a bucket without versioning, `etag-<ETag>`."""
    size: int

    @property
    def source(self) -> str:
        return f"reference:{self.key}@{self.version_id}"


@dataclass(frozen=True)
class ReferenceScore:
    scores: Mapping[str, float]
    rows: int
    library: str
    """What computed the metrics in the scoring process (`scikit-learn 1.9.1`, or `numpy 2.3.0`)."""


@dataclass(frozen=True)
class ScoreSpec:
    """What the scoring process computes (`proof_runner.py score --spec`)."""

    format: str
    target: str
    metrics: tuple[str, ...]
    max_rows: int

    @classmethod
    def of(cls, rule: ReferenceRule) -> ScoreSpec:
        return cls(dataset_format(rule.dataset) or "csv", rule.target, tuple(rule.metrics), rule.max_rows)

    def runner_spec(self, path: Path) -> dict[str, object]:
        return {
            "path": str(path),
            "format": self.format,
            "target": self.target,
            "metrics": list(self.metrics),
            "max_rows": self.max_rows,
        }


_REASON_OF_STAGE = {
    "environment": ENVIRONMENT_UNRESOLVABLE,
    "load": LOAD_FAILED,
    "dataset": DATASET_UNREADABLE,
    "predict": PREDICT_FAILED,
    "score": PREDICTIONS_INVALID,
}


def scored(outcome: ProofOutcome, reported: Mapping[str, object]) -> ReferenceScore | Check:
    """What a scoring process's outcome and its result file mean: the score, or the failed check with its reason."""
    if outcome.passed:
        try:
            scores = reported["scores"]
            if not isinstance(scores, dict):
                raise TypeError("scores")
            rows = reported["rows"]
            return ReferenceScore(
                {str(k): float(v) for k, v in scores.items()},
                int(rows) if isinstance(rows, int | str) else 0,
                str(reported["library"]),
            )
        except (KeyError, TypeError, ValueError):
            return failure(PREDICTIONS_INVALID, "the scoring process reported no scores")
    if outcome.timed_out:
        return failure(PROOF_TIMEOUT, f"scoring timed out in its {outcome.stage} stage", error=outcome.error)
    reason = reported.get("reason")
    if isinstance(reason, str) and reason in REASONS:
        return failure(reason, outcome.error.strip().splitlines()[-1] if outcome.error.strip() else reason)
    if outcome.reason == PYTHON_UNAVAILABLE:
        reason = PYTHON_UNAVAILABLE
    else:
        reason = _REASON_OF_STAGE.get(outcome.stage, LOAD_FAILED)
    return failure(reason, f"scoring failed in its {outcome.stage} stage", error=outcome.error)


def failure(reason: str, message: str, *, error: str = "", name: str = CHECK) -> Check:
    tail = error_tail(error)
    return Check(name, False, f"{reason}: {message}" + (f"\n{tail}" if tail else ""), observed=reason)


def reference_tag(rule: ReferenceRule, dataset: DatasetVersion) -> str:
    """The version tag caching a score on this dataset version (letters, digits and `.`, as `functions.domain.tags`
    requires): what changes the score is in its hash."""
    identity = json.dumps([dataset.key, dataset.version_id, rule.target, rule.max_rows])
    return f"{REFERENCE_TAG_PREFIX}{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


def cache_value(dataset: DatasetVersion, score: ReferenceScore) -> str:
    record = {"dataset": dataset.source, "rows": score.rows, "library": score.library, "scores": dict(score.scores)}
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


def cached_score(tags: Mapping[str, str], rule: ReferenceRule, dataset: DatasetVersion) -> ReferenceScore | None:
    """The score a version's tag caches for this dataset version, if it holds every metric the rule names."""
    try:
        record = json.loads(tags.get(reference_tag(rule, dataset)) or "{}")
        scores = {str(k): float(v) for k, v in record["scores"].items()}
        if record["dataset"] != dataset.source or not all(math.isfinite(scores.get(m, math.nan)) for m in rule.metrics):
            return None
        return ReferenceScore(scores, int(record["rows"]), str(record["library"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


ModelLocation = Callable[[VersionInfo], "tuple[str, str] | None"]
"""Where a version's files are in the artifact bucket: (bucket, prefix ending with '/'), or None."""


class ReferenceGate:
    """The gate's reference step (`Validator`): the candidate's scores, the holder's, and the comparison."""

    def __init__(self, *, registry: ModelRegistry, proofs: ModelProofs | None, locate: ModelLocation) -> None:
        self._registry = registry
        self._proofs = proofs
        self._locate = locate

    def checks(
        self, policy: Policy, version: VersionInfo, location: tuple[str, str] | None, bucket: str, prior: list[Check]
    ) -> list[Check]:
        """The reference checks of `version`, whose files are at `location`; the dataset is in `bucket`."""
        rule = policy.reference
        if rule is None:
            return []
        failures = sum(not check.passed for check in prior)
        if failures or self._proofs is None:  # the proof step has said why (proof_disabled, load_failed ...)
            return [Check(CHECK, True, f"not run: the version fails {failures} other check(s)", skipped=True)]
        dataset = self._proofs.dataset(bucket, rule.dataset)
        if isinstance(dataset, Check):
            return [dataset]
        candidate = self._score(version, rule, dataset, location)
        if isinstance(candidate, Check):
            return [candidate]
        checks = [_score_check(metric, candidate, dataset) for metric in rule.metrics]
        if policy.compare is not None:
            checks.append(self._compare(policy.compare, rule, version, candidate, dataset))
        return checks

    def _compare(
        self,
        compare: CompareRule,
        rule: ReferenceRule,
        version: VersionInfo,
        candidate: ReferenceScore,
        dataset: DatasetVersion,
    ) -> Check:
        source = dataset.source
        evidence = Evidence(
            metrics={compare.metric: Observed(candidate.scores[compare.metric], source)},
            metric_problems={},
            has_signature=None,
            files=frozenset(),
            run_tags=None,
            has_dataset_inputs=False,
        )
        holder = self._registry.get_alias_version(version.model_name, compare.alias)
        if holder is None:  # "no version holds it yet: skipped"
            return compare_check(compare, evidence)
        if holder.version == version.version:
            return compare_check(compare, replace(evidence, baseline_version=holder.version, is_baseline=True))
        held = self._score(holder, rule, dataset, self._locate(holder))
        if isinstance(held, Check):
            name = f"compare:{compare.alias}:{compare.metric}"
            why = f"{compare.alias} (version {holder.version}) could not be scored on {source}: {held.message}"
            return Check(name, False, why, candidate.scores[compare.metric], source=source)
        baseline = Observed(held.scores[compare.metric], source)
        return compare_check(compare, replace(evidence, baseline_version=holder.version, baseline_metric=baseline))

    def _score(
        self, version: VersionInfo, rule: ReferenceRule, dataset: DatasetVersion, location: tuple[str, str] | None
    ) -> ReferenceScore | Check:
        """A version's score: its cached tag, or a scoring process whose result is then cached on it."""
        cached = cached_score(version.tags, rule, dataset)
        if cached is not None:
            return cached
        if location is None or self._proofs is None:
            return failure("load_failed", f"version {version.version}'s files are not in the artifact bucket")
        scored = self._proofs.score(location[0], location[1], dataset, rule)
        if isinstance(scored, ReferenceScore):
            missing = [m for m in rule.metrics if not math.isfinite(scored.scores.get(m, math.nan))]
            if missing:
                message = f"no finite {', '.join(missing)} for version {version.version} on {dataset.source}"
                return failure(PREDICTIONS_INVALID, message)
            tag = {reference_tag(rule, dataset): cache_value(dataset, scored)}
            self._registry.set_version_tags(version.model_name, version.version, tag)
        return scored


def _score_check(metric: str, score: ReferenceScore, dataset: DatasetVersion) -> Check:
    value = score.scores[metric]
    message = f"{metric} {value:g} on {score.rows} rows of {dataset.key} (computed with {score.library})"
    return Check(f"{CHECK}:{metric}", True, message, value, source=dataset.source)


def scored_on(rule: ReferenceRule, sources: list[str | None]) -> DatasetVersion | None:
    """The dataset version a verdict's reference checks name (`reference:<key>@<version id>`), if any: the aliases
    route ranks a candidate and the holder by their scores cached for it."""
    prefix = f"reference:{rule.dataset}@"
    version_id = next((s[len(prefix) :] for s in sources if s and s.startswith(prefix)), None)
    return DatasetVersion(rule.dataset, version_id, 0) if version_id else None
