"""The policy engine, table-driven: each rule passing, failing, missing, NaN, exactly at its threshold."""

from __future__ import annotations

import math

import pytest

from functions.domain.policy import (
    CompareRule,
    Evidence,
    LineageRule,
    MetricRule,
    Observed,
    Policy,
    PolicyError,
    evaluate,
    load_policies,
    parse_policy,
)
from functions.project import ROOT

REPO_POLICIES = ROOT / "policies"


def evidence(**changes) -> Evidence:  # type: ignore[no-untyped-def]
    base = {
        "metrics": {},
        "metric_problems": {},
        "has_signature": True,
        "files": frozenset({"MLmodel", "requirements.txt"}),
        "run_tags": {},
        "has_dataset_inputs": False,
    }
    return Evidence(**{**base, **changes})


def only(checks, prefix):  # type: ignore[no-untyped-def]
    return [c for c in checks if c.name.startswith(prefix)]


@pytest.mark.parametrize(
    ("rule", "value", "passed"),
    [
        (MetricRule(min=0.8), 0.9, True),
        (MetricRule(min=0.8), 0.8, True),  # exactly at the threshold passes
        (MetricRule(min=0.8), 0.79, False),
        (MetricRule(max=100), 100.0, True),
        (MetricRule(max=100), 100.5, False),
        (MetricRule(min=0.1, max=0.2), 0.15, True),
        (MetricRule(min=0.1, max=0.2), 0.25, False),
        (MetricRule(min=0.8), math.nan, False),
        (MetricRule(min=0.8), math.inf, False),
        (MetricRule(max=1.0), -math.inf, False),
        (MetricRule(), 0.5, True),  # present is enough
    ],
)
def test_metric_thresholds(rule, value, passed):
    # GIVEN a policy with one metric rule and an observed value
    policy = Policy(metrics={"accuracy": rule}, artifacts={"environment": False})
    # WHEN evaluated
    checks = evaluate(policy, evidence(metrics={"accuracy": Observed(value, "run")}))
    # THEN the verdict follows the threshold, and NaN or infinity never pass
    assert all(c.passed for c in checks) is passed
    assert all(c.source == "run" for c in checks)


def test_missing_required_metric_fails_and_optional_is_skipped():
    policy = Policy(
        metrics={"accuracy": MetricRule(min=0.8), "latency_ms": MetricRule(max=50, required=False)},
        artifacts={"environment": False},
    )
    checks = {c.name: c for c in evaluate(policy, evidence())}
    assert checks["metric:accuracy"].passed is False
    assert "missing (required)" in checks["metric:accuracy"].message
    assert checks["metric:latency_ms"].passed is True
    assert checks["metric:latency_ms"].skipped is True


@pytest.mark.parametrize(
    ("rule", "candidate", "champion", "passed"),
    [
        (CompareRule(metric="accuracy"), 0.91, 0.90, True),
        (CompareRule(metric="accuracy"), 0.90, 0.90, True),  # equal meets a zero minimum improvement
        (CompareRule(metric="accuracy"), 0.89, 0.90, False),
        (CompareRule(metric="accuracy", min_improvement=0.01), 0.91, 0.90, True),  # at the threshold
        (CompareRule(metric="accuracy", min_improvement=0.02), 0.91, 0.90, False),
        (CompareRule(metric="rmse", direction="lower"), 1.9, 2.0, True),
        (CompareRule(metric="rmse", direction="lower"), 2.1, 2.0, False),
        (CompareRule(metric="auc", improvement="relative", min_improvement=0.05), 0.84, 0.80, True),
        (CompareRule(metric="auc", improvement="relative", min_improvement=0.05), 0.83, 0.80, False),
        (CompareRule(metric="loss", direction="lower", improvement="relative"), -1.0, 0.0, True),
        (CompareRule(metric="loss", direction="lower", improvement="relative"), 1.0, 0.0, False),
        (CompareRule(metric="accuracy"), math.nan, 0.9, False),
        (CompareRule(metric="accuracy"), 0.95, math.nan, False),
    ],
)
def test_comparison_with_the_alias_holder(rule, candidate, champion, passed):
    # GIVEN a candidate and the version holding the alias, each with the compared metric
    policy = Policy(compare=rule, artifacts={"environment": False})
    facts = evidence(
        metrics={rule.metric: Observed(candidate, "run")},
        baseline_version="3",
        baseline_metric=Observed(champion, "run"),
    )
    # WHEN evaluated
    [check] = evaluate(policy, facts)
    # THEN the candidate passes only when it improves enough in the policy's direction
    assert check.passed is passed
    assert check.name == f"compare:champion:{rule.metric}"


def test_comparison_is_skipped_and_said_so_without_a_holder_or_for_the_holder_itself():
    policy = Policy(compare=CompareRule(metric="accuracy"), artifacts={"environment": False})
    [none_yet] = evaluate(policy, evidence(metrics={"accuracy": Observed(0.5, "run")}))
    [itself] = evaluate(policy, evidence(baseline_version="2", is_baseline=True))
    assert (none_yet.passed, none_yet.skipped) == (True, True)
    assert "no version holds champion yet" in none_yet.message
    assert (itself.passed, itself.skipped) == (True, True)


@pytest.mark.parametrize(("candidate", "champion"), [(0.89, 0.90), (0.95, 0.90)])
def test_a_comparison_that_only_ranks_never_fails_the_verdict_but_still_says_how_it_compares(candidate, champion):
    # GIVEN a policy whose comparison with the champion ranks versions without gating them
    policy = Policy(compare=CompareRule(metric="accuracy", gate=False), artifacts={"environment": False})
    facts = evidence(
        metrics={"accuracy": Observed(candidate, "run")},
        baseline_version="3",
        baseline_metric=Observed(champion, "run"),
    )
    # WHEN a worse and a better candidate are evaluated
    [check] = evaluate(policy, facts)
    # THEN both pass; the worse one's check is marked skipped and says why, with the numbers it compared
    assert check.passed is True
    assert check.skipped is (candidate < champion)
    assert (check.observed, check.threshold) == (candidate, champion)
    if candidate < champion:
        assert check.message.endswith("(ranks only: compare.gate is false)")
        assert "does not beat champion v3" in check.message


def test_comparison_fails_when_the_candidate_lacks_the_metric():
    policy = Policy(compare=CompareRule(metric="accuracy"), artifacts={"environment": False})
    [check] = evaluate(policy, evidence(baseline_version="1", baseline_metric=Observed(0.9, "run")))
    assert check.passed is False


@pytest.mark.parametrize(
    ("files", "signature", "passed"),
    [
        ({"MLmodel", "requirements.txt"}, True, True),
        ({"MLmodel", "conda.yaml"}, True, True),
        ({"MLmodel", "python_env.yaml"}, True, True),
        ({"MLmodel", "model.pkl"}, True, False),
        ({"MLmodel", "requirements.txt"}, False, False),
        ({"MLmodel", "requirements.txt"}, None, False),
    ],
)
def test_artifact_requirements(files, signature, passed):
    policy = Policy(artifacts={"signature": True, "environment": True})
    checks = evaluate(policy, evidence(files=frozenset(files), has_signature=signature))
    assert all(c.passed for c in checks) is passed


@pytest.mark.parametrize(
    ("files", "passed"),
    [({"requirements.txt", "conda.yaml"}, True), ({"conda.yaml", "python_env.yaml"}, False)],
)
def test_environment_can_name_the_files_it_needs(files, passed):
    policy = Policy(artifacts={"environment": ["requirements.txt"]})
    [check] = evaluate(policy, evidence(files=frozenset(files)))
    assert check.passed is passed
    assert check.passed or check.message == "missing requirements.txt: cannot be rebuilt"


@pytest.mark.parametrize(
    ("rule", "tags", "inputs", "passed"),
    [
        (LineageRule(run_tags=["data.version"]), {"data.version": "42"}, False, True),
        (LineageRule(run_tags=["data.version"]), {}, False, False),
        (LineageRule(run_tags=["data.version"]), {"data.version": ""}, False, False),
        (LineageRule(run_tags=["data.version"]), None, False, False),  # no run known
        (LineageRule(dataset_inputs=True), {}, True, True),
        (LineageRule(dataset_inputs=True), {}, False, False),
    ],
)
def test_lineage_requirements(rule, tags, inputs, passed):
    policy = Policy(lineage=rule, artifacts={"environment": False})
    checks = evaluate(policy, evidence(run_tags=tags, has_dataset_inputs=inputs))
    assert all(c.passed for c in checks) is passed


def test_an_unreadable_metric_source_fails_the_verdict_with_its_reason():
    policy = Policy(artifacts={"environment": False})
    [check] = evaluate(policy, evidence(metric_problems={"metrics.json": "metrics.json is not valid JSON"}))
    assert (check.passed, check.message) == (False, "metrics.json is not valid JSON")


# --- schema ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics:\n  accuracy: {min: 0.9, max: 0.8}\n", r"<p>:2: metrics\.accuracy: impossible range"),
        ("metrics:\n  accuracy:\n    minimum: 0.9\n", r"<p>:3: metrics\.accuracy\.minimum: unknown key"),
        ("metrics:\n  accuracy: {min: high}\n", r"<p>:2: metrics\.accuracy\.min: Input should be a valid number"),
        ("metrics:\n  accuracy: {min: .nan}\n", r"<p>:2: metrics\.accuracy\.min: Input should be a finite number"),
        (
            "compare:\n  metric: auc\n  direction: up\n",
            r"<p>:3: compare\.direction: Input should be 'higher' or 'lower'",
        ),
        ("compare:\n  direction: lower\n", r"<p>:2: compare\.metric: Field required"),
        ("compare:\n  metric: auc\n  min_improvement: -1\n", r"<p>:3: compare\.min_improvement: Input should be"),
        ("lineage:\n  run_tags: data.version\n", r"<p>:2: lineage\.run_tags: Input should be a valid list"),
        ("thresholds: {}\n", r"<p>:1: thresholds: unknown key"),
        ("- a\n- b\n", r"<p>:1: a policy is a mapping"),
        ("metrics: [unclosed\n", r"<p>:2: not valid YAML"),
        ("proof: full\n", r"<p>:1: proof\.level: Input should be 'off' or 'smoke'"),
        ("proof: on\n", r"<p>:1: proof: write `smoke` or `off`"),
        ("proof:\n  level: smoke\n  missing_example: maybe\n", r"<p>:3: proof\.missing_example: Input should be"),
        ("proof:\n  level: smoke\n  timeout: 5\n", r"<p>:3: proof\.timeout: unknown key"),
    ],
)
def test_schema_errors_name_the_file_line_and_problem(text, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(text, source="<p>")


@pytest.mark.parametrize(
    ("text", "level", "missing_example"),
    [
        ("{}\n", "off", "fail"),  # the default: a policy that does not ask for a proof gets none
        ("proof: smoke\n", "smoke", "fail"),
        ("proof: off\n", "off", "fail"),  # YAML 1.1 reads a bare off as false
        ("proof: {level: smoke, missing_example: skip}\n", "smoke", "skip"),
    ],
)
def test_a_policy_asks_for_a_proof_in_the_short_or_the_long_form(text, level, missing_example):
    # GIVEN a policy's proof key
    # WHEN it is parsed
    proof = parse_policy(text).proof
    # THEN the level and what a missing input example means are as written, off unless asked for
    assert (proof.level, proof.missing_example, proof.enabled) == (level, missing_example, level == "smoke")


def test_the_repository_policies_load(tmp_path):
    # GIVEN the policies shipped with the stack
    # WHEN loaded as the stack loads them at synth
    policies = load_policies(REPO_POLICIES)
    # THEN there is a default, and every policy has an identity with its hash
    assert "default" in policies.policies
    assert policies.for_model("any-model").name == "default"
    assert policies.for_model("any-model").identity.startswith("default.yaml@sha256:")


def test_a_model_policy_wins_over_the_default(tmp_path):
    (tmp_path / "default.yaml").write_text("artifacts: {environment: true}\n")
    (tmp_path / "churn.yaml").write_text("metrics: {auc: {min: 0.7}}\n")
    policies = load_policies(tmp_path)
    assert policies.for_model("churn").policy.metrics["auc"].min == 0.7
    assert policies.for_model("other").name == "default"


def test_a_folder_without_a_default_is_refused(tmp_path):
    (tmp_path / "churn.yaml").write_text("{}\n")
    with pytest.raises(PolicyError, match="default.yaml: missing"):
        load_policies(tmp_path)


def test_a_broken_file_in_the_folder_is_named(tmp_path):
    (tmp_path / "default.yaml").write_text("{}\n")
    (tmp_path / "churn.yaml").write_text("metrics:\n  auc: {min: 2, max: 1}\n")
    with pytest.raises(PolicyError, match=r"churn\.yaml:2: metrics\.auc: impossible range"):
        load_policies(tmp_path)
