"""The policy's thresholds and comparisons decide as MLflow's own model validation does, on the same inputs.

A policy's `metrics.<name>.min|max` is MLflow's `MetricThreshold(threshold=...)`, and `compare` with a positive
`min_improvement` is `MetricThreshold(min_absolute_change=...)` (`improvement: absolute`) or
`min_relative_change=...` (`improvement: relative`), `direction` being `greater_is_better`. Each case below is run
through `functions.domain.policy.evaluate` and through `mlflow.validate_evaluation_results` (MLflow 3's replacement
for `evaluate(..., validation_thresholds=...)`), and the two must agree.

Two differences are deliberate and pinned at the end: a candidate exactly at the documented boundary
(`candidate >= baseline + min_absolute_change`) passes here even when floating-point addition puts the sum a hair
above it (MLflow compares `Decimal(baseline + change)`, so 0.84 against 0.80 + 0.04 fails there), and a policy may
ask for "not worse" (`min_improvement: 0`), which MetricThreshold cannot express (its changes must be positive).
"""

from __future__ import annotations

import itertools

import mlflow
import pytest
from mlflow.models import EvaluationResult, MetricThreshold
from mlflow.models.evaluation.validation import ModelValidationFailedException

from functions.domain.policy import CompareRule, Evidence, MetricRule, Observed, Policy, evaluate


def _evidence(candidate: float, baseline: float | None) -> Evidence:
    return Evidence(
        metrics={"m": Observed(candidate, "run")},
        metric_problems={},
        has_signature=True,
        files=frozenset({"MLmodel", "requirements.txt"}),
        run_tags={},
        has_dataset_inputs=False,
        baseline_version=None if baseline is None else "1",
        baseline_metric=None if baseline is None else Observed(baseline, "run"),
    )


def ours(policy: Policy, candidate: float, baseline: float | None = None) -> bool:
    return all(check.passed for check in evaluate(policy, _evidence(candidate, baseline)))


def mlflows(threshold: MetricThreshold, candidate: float, baseline: float | None = None) -> bool:
    baseline_result = None if baseline is None else EvaluationResult(metrics={"m": baseline}, artifacts={})
    try:
        mlflow.validate_evaluation_results(
            {"m": threshold}, EvaluationResult(metrics={"m": candidate}, artifacts={}), baseline_result
        )
    except ModelValidationFailedException:
        return False
    return True


NO_FILES = {"environment": False}
VALUES = (-2.0, -0.5, 0.0, 0.3, 0.5, 0.8, 0.85, 0.9, 1.0, 3.0)


@pytest.mark.parametrize(("bound", "candidate"), list(itertools.product((0.0, 0.5, 0.85, -1.0), VALUES)))
@pytest.mark.parametrize("greater_is_better", [True, False])
def test_a_metric_threshold_decides_as_mlflow_does(bound, candidate, greater_is_better):
    # GIVEN a bound on a metric, as a policy rule and as MLflow's MetricThreshold
    rule = MetricRule(min=bound) if greater_is_better else MetricRule(max=bound)
    policy = Policy(metrics={"m": rule}, artifacts=NO_FILES)
    threshold = MetricThreshold(threshold=bound, greater_is_better=greater_is_better)
    # WHEN a candidate is checked against it
    # THEN both say the same
    assert ours(policy, candidate) is mlflows(threshold, candidate)


CHANGES = (0.05, 0.1, 0.5, 1.0)


def _off_the_boundary(improvement: str, greater_is_better: bool) -> list[tuple[float, float, float]]:
    """(change, candidate, baseline) cases whose improvement is not exactly the minimum (those are pinned below)."""
    cases = []
    for change, candidate, baseline in itertools.product(CHANGES, VALUES, VALUES):
        gain = candidate - baseline if greater_is_better else baseline - candidate
        measured = gain if improvement == "absolute" or baseline == 0 else gain / abs(baseline)
        if abs(measured - change) >= 1e-9:
            cases.append((change, candidate, baseline))
    return cases


@pytest.mark.parametrize(
    ("improvement", "greater_is_better", "change", "candidate", "baseline"),
    [
        (improvement, greater, *case)
        for improvement, greater in itertools.product(("absolute", "relative"), (True, False))
        for case in _off_the_boundary(improvement, greater)
    ],
    ids=str,
)
def test_a_comparison_with_the_baseline_decides_as_mlflow_does(
    improvement, greater_is_better, change, candidate, baseline
):
    # GIVEN a minimum improvement over the baseline (zero and negative baselines included), both ways
    rule = CompareRule(
        metric="m",
        direction="higher" if greater_is_better else "lower",
        min_improvement=change,
        improvement=improvement,
    )
    policy = Policy(compare=rule, artifacts=NO_FILES)
    kind = "min_absolute_change" if improvement == "absolute" else "min_relative_change"
    threshold = MetricThreshold(greater_is_better=greater_is_better, **{kind: change})
    # WHEN the candidate is compared with the baseline
    # THEN both say the same
    assert ours(policy, candidate, baseline) is mlflows(threshold, candidate, baseline)


@pytest.mark.parametrize(("candidate", "baseline", "change"), [(0.84, 0.80, 0.04), (0.3, 0.1, 0.2), (0.91, 0.90, 0.01)])
def test_a_candidate_exactly_at_the_documented_boundary_passes_whatever_float_addition_says(
    candidate, baseline, change
):
    # GIVEN a candidate that beats the baseline by exactly the minimum change, on paper
    policy = Policy(compare=CompareRule(metric="m", min_improvement=change), artifacts=NO_FILES)
    # WHEN compared
    # THEN it passes, as MLflow documents (`candidate >= baseline + min_absolute_change`), even where MLflow's
    # implementation compares against the rounded float sum (0.80 + 0.04 == 0.8400000000000001)
    assert ours(policy, candidate, baseline) is True
    assert (baseline + change > candidate) is not mlflows(
        MetricThreshold(min_absolute_change=change, greater_is_better=True), candidate, baseline
    )


def test_not_worse_is_a_policy_of_its_own_that_metric_threshold_cannot_state():
    # GIVEN a comparison asking only that the candidate be no worse than the baseline
    policy = Policy(compare=CompareRule(metric="m", min_improvement=0.0), artifacts=NO_FILES)
    # THEN an equal candidate passes and a worse one fails, while MLflow refuses a zero change outright
    assert ours(policy, 0.9, 0.9) is True
    assert ours(policy, 0.89, 0.9) is False
    with pytest.raises(mlflow.exceptions.MlflowException, match="must be a positive number"):
        MetricThreshold(min_absolute_change=0.0)
