"""Reference data (`functions.domain.reference`, policy `reference:`): the candidate and the compared alias's holder
are scored on the platform's rows, and the comparison uses those scores, not the self-reported metric."""

from __future__ import annotations

import pytest

from functions.domain.policy import Check, PolicyError, parse_policy
from functions.domain.proof import LOAD_FAILED, PREDICT_FAILED, PROOF_TIMEOUT, ProofOutcome
from functions.domain.reference import (
    DATASET_EMPTY,
    DATASET_MISSING,
    PREDICTIONS_INVALID,
    TARGET_MISSING,
    DatasetVersion,
    ReferenceScore,
    cache_value,
    cached_score,
    failure,
    reference_tag,
    scored,
)
from functions.domain.reference_policy import ReferenceRule
from functions.domain.tags import REFERENCE_TAG_PREFIX
from functions.models.events import CheckResult
from tests.builders import BUCKET, AliasWorld, ValidationWorld
from tests.fakes import FakeModelProofs

KEY = "datasets/churn/holdout.csv"
DATASET = DatasetVersion(KEY, "v7", 1200)
SOURCE = f"reference:{KEY}@v7"
POLICY = f"""
metrics: {{accuracy: {{min: 0.5}}}}
compare: {{alias: champion, metric: accuracy}}
proof: {{level: smoke, missing_example: skip}}
reference: {{dataset: {KEY}, target: churned, metrics: [accuracy]}}
"""
RULE = ReferenceRule(dataset=KEY, target="churned", metrics=["accuracy"])


def _score(accuracy: float) -> ReferenceScore:
    return ReferenceScore({"accuracy": accuracy}, 200, "scikit-learn 1.9.1")


def _world(tmp_path, scores: dict[str, ReferenceScore | Check]):  # type: ignore[no-untyped-def]
    proofs = FakeModelProofs([Check("proof:load", True, "loaded")], datasets={KEY: DATASET}, scores=scores)
    return ValidationWorld(tmp_path, POLICY, proofs=proofs), proofs


# --- the policy key ----------------------------------------------------------------------------------


def test_a_reference_policy_parses_with_its_defaults() -> None:
    # GIVEN / WHEN the policy above is parsed
    policy = parse_policy(POLICY)
    # THEN its reference has the default row cap
    assert policy.reference == ReferenceRule(dataset=KEY, target="churned", metrics=["accuracy"], max_rows=100_000)


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("{dataset: models/x.csv, target: y, metrics: [accuracy]}", "is not under datasets/"),
        ("{dataset: datasets/x.json, target: y, metrics: [accuracy]}", "neither CSV nor Parquet"),
        ("{dataset: datasets/../x.csv, target: y, metrics: [accuracy]}", "'..' part"),
        ("{dataset: datasets/x.csv, metrics: [accuracy]}", "reference.target: Field required"),
        ("{dataset: datasets/x.csv, target: y, metrics: [auc]}", "reference.metrics.0: Input should be"),
        ("{dataset: datasets/x.csv, target: y, metrics: []}", "at least 1 item"),
        ("{dataset: datasets/x.csv, target: y, metrics: [accuracy], max_rows: 2000000}", "less than or equal"),
        ("{dataset: datasets/x.csv, target: y, metrics: [rmse]}", "compare.metric accuracy is not among"),
    ],
)
def test_a_bad_reference_stops_at_load_with_the_problem(reference: str, problem: str) -> None:
    # GIVEN a policy whose reference is wrong
    text = f"compare: {{metric: accuracy}}\nproof: smoke\nreference: {reference}\n"
    # WHEN it is parsed / THEN it is refused with the problem, the file and a line
    with pytest.raises(PolicyError, match="^p.yaml:[0-9]+: ") as raised:
        parse_policy(text, source="p.yaml")
    assert problem in str(raised.value)


def test_a_reference_needs_a_proof_and_the_metric_s_own_direction() -> None:
    # GIVEN a reference without `proof: smoke`, and one comparing rmse with higher-is-better
    # WHEN parsed / THEN each is refused with why
    with pytest.raises(PolicyError, match="needs `proof: smoke`"):
        parse_policy("reference: {dataset: datasets/x.parquet, target: y, metrics: [r2]}\n")
    with pytest.raises(PolicyError, match="compare.direction must be lower for rmse"):
        parse_policy(
            "compare: {metric: rmse}\nproof: smoke\nreference: {dataset: datasets/x.csv, target: y, metrics: [rmse]}"
        )


# --- the gate --------------------------------------------------------------------------------------


def test_a_candidate_worse_on_the_reference_data_fails_although_its_own_metric_is_better(tmp_path) -> None:
    # GIVEN champion v1 (self-reported 0.80) and candidate v2 (self-reported 0.99), scored 0.90 and 0.70 on the rows
    world, proofs = _world(tmp_path, {"models/churn/1/": _score(0.90), "models/churn/2/": _score(0.70)})
    world.version("1", accuracy=0.80)
    world.registry.aliases[("churn", "champion")] = "1"
    # WHEN the candidate is validated
    verdict = world.validator.validate(world.version("2", accuracy=0.99))
    # THEN the comparison used the reference scores, with their source, and failed the verdict
    assert verdict.status == "failed"
    compare = world.check("compare:champion:accuracy")
    assert (compare.passed, compare.observed, compare.threshold, compare.source) == (False, 0.70, 0.90, SOURCE)
    assert world.check("reference:accuracy").observed == 0.70
    assert world.check("metric:accuracy:min").source == "run"  # the self-reported check is still there
    assert proofs.scored == [("models/churn/2/", SOURCE), ("models/churn/1/", SOURCE)]


def test_the_holder_is_scored_once_per_dataset_version_not_once_per_candidate(tmp_path) -> None:
    # GIVEN champion v1 and two candidates, each better on the reference data
    world, proofs = _world(
        tmp_path, {"models/churn/1/": _score(0.7), "models/churn/2/": _score(0.8), "models/churn/3/": _score(0.9)}
    )
    world.version("1", accuracy=0.80)
    world.registry.aliases[("churn", "champion")] = "1"
    # WHEN both candidates are validated
    first = world.validator.validate(world.version("2", accuracy=0.81))
    second = world.validator.validate(world.version("3", accuracy=0.82))
    # THEN both passed, the holder was scored for the first only, and its score is cached in its tag
    assert (first.status, second.status) == ("passed", "passed")
    assert [prefix for prefix, _ in proofs.scored] == ["models/churn/2/", "models/churn/1/", "models/churn/3/"]
    assert cached_score(world.registry.get_version("churn", "1").tags, RULE, DATASET) == _score(0.7)
    assert world.check("compare:champion:accuracy").threshold == 0.7


def test_a_new_dataset_version_scores_the_holder_again(tmp_path) -> None:
    # GIVEN a holder whose score is cached for dataset version v7
    world, proofs = _world(tmp_path, {"models/churn/1/": _score(0.7), "models/churn/2/": _score(0.8)})
    world.version("1", accuracy=0.80, tags={reference_tag(RULE, DATASET): cache_value(DATASET, _score(0.6))})
    world.registry.aliases[("churn", "champion")] = "1"
    proofs.datasets[KEY] = DatasetVersion(KEY, "v8", 1300)
    # WHEN a candidate is validated against version v8 of the dataset
    world.validator.validate(world.version("2", accuracy=0.81))
    # THEN the holder was scored again on v8, its v7 score left as it was
    assert [prefix for prefix, _ in proofs.scored] == ["models/churn/2/", "models/churn/1/"]
    assert world.check("compare:champion:accuracy").source == f"reference:{KEY}@v8"


def test_without_a_holder_the_candidate_is_scored_and_the_comparison_skipped(tmp_path) -> None:
    # GIVEN no version holds champion
    world, proofs = _world(tmp_path, {"models/churn/1/": _score(0.7)})
    # WHEN the first version is validated
    verdict = world.validator.validate(world.version("1", accuracy=0.9))
    # THEN it passed, its score is recorded and cached on it (it is not scored again when it holds champion)
    assert verdict.status == "passed"
    assert world.check("compare:champion:accuracy").skipped
    assert world.registry.get_version("churn", "1").tags[reference_tag(RULE, DATASET)].startswith("{")
    assert all(name.startswith(REFERENCE_TAG_PREFIX) for _, _, tags in world.registry.tag_writes[:1] for name in tags)


@pytest.mark.parametrize(
    ("datasets", "scores", "name", "reason"),
    [
        ({}, {}, "reference", DATASET_MISSING),
        ({KEY: DATASET}, {"models/churn/2/": failure(TARGET_MISSING, "no column")}, "reference", TARGET_MISSING),
        ({KEY: DATASET}, {"models/churn/2/": failure(DATASET_EMPTY, "no rows")}, "reference", DATASET_EMPTY),
        (
            {KEY: DATASET},
            {"models/churn/2/": _score(0.9), "models/churn/1/": failure(LOAD_FAILED, "the pickle")},
            "compare:champion:accuracy",
            None,
        ),
        (
            {KEY: DATASET},
            {"models/churn/2/": ReferenceScore({"accuracy": float("nan")}, 5, "numpy")},
            "reference",
            PREDICTIONS_INVALID,
        ),
    ],
)
def test_what_cannot_be_scored_is_a_failed_check_with_its_reason(tmp_path, datasets, scores, name, reason) -> None:
    # GIVEN a champion and a dataset or a score that is bad in one way
    proofs = FakeModelProofs([Check("proof:load", True, "loaded")], datasets=datasets, scores=scores)
    world = ValidationWorld(tmp_path, POLICY, proofs=proofs)
    world.version("1", accuracy=0.80)
    world.registry.aliases[("churn", "champion")] = "1"
    # WHEN a candidate is validated
    verdict = world.validator.validate(world.version("2", accuracy=0.9))
    # THEN it failed with that check and reason (a holder that cannot be scored fails the comparison), nothing raised
    assert verdict.status == "failed"
    check = world.check(name)
    assert not check.passed
    if reason:
        assert check.observed == reason
        assert check.message.startswith(reason)
    else:
        assert "could not be scored" in check.message
        assert LOAD_FAILED in check.message


def test_a_version_failing_another_check_is_not_scored(tmp_path) -> None:
    # GIVEN a candidate below the policy's minimum
    world, proofs = _world(tmp_path, {})
    # WHEN validated
    world.validator.validate(world.version("1", accuracy=0.1))
    # THEN nothing was scored and the reference check says why
    assert proofs.scored == []
    assert world.check("reference").skipped


# --- what a scoring process's outcome means -----------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "reported", "reason"),
    [
        (ProofOutcome("dataset", False, "target"), {"reason": TARGET_MISSING}, TARGET_MISSING),
        (ProofOutcome("predict", False, "ZeroDivisionError"), {}, PREDICT_FAILED),
        (ProofOutcome("score", False, "x"), {}, PREDICTIONS_INVALID),
        (ProofOutcome("load", False, "", timed_out=True), {}, PROOF_TIMEOUT),
        (ProofOutcome("score", True), {"scores": "no"}, PREDICTIONS_INVALID),
        (ProofOutcome("dataset", False, "x"), {"reason": "made_up"}, "dataset_unreadable"),
    ],
)
def test_a_scoring_outcome_becomes_its_reason(outcome: ProofOutcome, reported: dict, reason: str) -> None:
    # GIVEN / WHEN a scoring process's outcome is read / THEN its check carries the reason
    check = scored(outcome, reported)
    assert isinstance(check, Check)
    assert check.observed == reason


def test_a_passed_scoring_outcome_is_the_score() -> None:
    # GIVEN / WHEN a passed outcome is read / THEN it is the score
    result = scored(ProofOutcome("score", True), {"scores": {"accuracy": 0.5}, "rows": 4, "library": "numpy 2"})
    assert result == ReferenceScore({"accuracy": 0.5}, 4, "numpy 2")


def test_a_cached_score_for_another_dataset_version_or_missing_a_metric_is_not_used() -> None:
    # GIVEN a tag caching accuracy on v7
    tags = {reference_tag(RULE, DATASET): cache_value(DATASET, _score(0.7))}
    # WHEN read for v7, for v8, and for a rule that also wants r2 / THEN only the first is a score
    assert cached_score(tags, RULE, DATASET) == _score(0.7)
    assert cached_score(tags, RULE, DatasetVersion(KEY, "v8", 1)) is None
    assert cached_score(tags, RULE.model_copy(update={"metrics": ["accuracy", "r2"]}), DATASET) is None
    assert cached_score({reference_tag(RULE, DATASET): "not json"}, RULE, DATASET) is None
    assert BUCKET  # the builders' bucket holds the models these tests score


def test_champion_auto_ranks_by_the_reference_scores_the_gate_compared(tmp_path) -> None:
    # GIVEN champion v1 (reports 0.95, scored 0.70 on the rows) and a passed v2 (reports 0.80, scored 0.90)
    world = AliasWorld(tmp_path, POLICY + "promotion: {aliases: {champion: auto}}\n")
    world.version("1", 0.95)
    world.registry.aliases[("churn", "champion")] = "1"
    verdict = world.version("2", 0.80)
    for number, accuracy in (("1", 0.70), ("2", 0.90)):
        world.registry.set_version_tags(
            "churn", number, {reference_tag(RULE, DATASET): cache_value(DATASET, _score(accuracy))}
        )
    checks = [CheckResult(name="reference:accuracy", passed=True, observed=0.9, source=SOURCE, message="scored")]
    # WHEN the aliases route gets v2's verdict, whose checks name the dataset version both were scored on
    world.keeper.on_verdict(verdict.model_copy(update={"checks": checks}))
    # THEN champion moved to v2: ranked by the scores on the platform's rows, not by what each version reports
    assert world.holder("champion") == "2"
