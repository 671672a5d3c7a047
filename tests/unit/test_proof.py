"""The proof's domain: what a proof needs before it runs, and what its outcome means as checks."""

from __future__ import annotations

import pytest

from functions.domain.policy import Check
from functions.domain.proof import (
    ENVIRONMENT_UNRESOLVABLE,
    LOAD_FAILED,
    NO_INPUT_EXAMPLE,
    PREDICT_FAILED,
    PROOF_TIMEOUT,
    PYTHON_UNAVAILABLE,
    SIGNATURE_MISMATCH,
    TOO_LARGE_FOR_PROOF,
    ProofOutcome,
    ProofPlan,
    error_tail,
    outcome_checks,
    plan_proof,
)

MODEL_FILES = {"MLmodel": 600, "model.pkl": 1200, "python_env.yaml": 100, "requirements.txt": 90}


def _failed(checks: list[Check]) -> list[tuple[str, object]]:
    return [(check.name, check.observed) for check in checks if not check.passed]


def test_a_complete_model_directory_is_planned_on_its_serving_example() -> None:
    # GIVEN a model directory with both example files, an environment and a signature
    files = MODEL_FILES | {"input_example.json": 50, "serving_input_example.json": 60}
    # WHEN planned
    plan = plan_proof(files, has_signature=True)
    # THEN the proof runs on the serving example
    assert plan == ProofPlan(input_example="serving_input_example.json", has_signature=True)


@pytest.mark.parametrize(
    ("files", "name", "reason"),
    [
        ({"model.pkl": 1, "input_example.json": 1}, "proof:load", LOAD_FAILED),
        (MODEL_FILES | {"input_example.json": 10**9}, "proof:size", TOO_LARGE_FOR_PROOF),
        ({"MLmodel": 1, "model.pkl": 1, "input_example.json": 1}, "proof:environment", ENVIRONMENT_UNRESOLVABLE),
        (MODEL_FILES, "proof:input", NO_INPUT_EXAMPLE),
    ],
    ids=["no MLmodel", "too large", "no environment file", "no input example"],
)
def test_a_model_directory_a_proof_cannot_run_on_is_one_failed_check(
    files: dict[str, int], name: str, reason: str
) -> None:
    # GIVEN a model directory missing what a proof needs (or over the size limit)
    # WHEN planned
    check = plan_proof(files, has_signature=True, max_model_bytes=100 * 1024 * 1024)
    # THEN it is a failed check with the reason, its message starting with the reason
    assert isinstance(check, Check)
    assert (check.name, check.passed, check.observed) == (name, False, reason)
    assert check.message.startswith(f"{reason}: ")


def test_a_missing_input_example_is_a_skip_when_the_policy_says_so() -> None:
    # GIVEN a model without an input example, planned with missing_example: skip
    check = plan_proof(MODEL_FILES, has_signature=True, missing_example="skip")
    # THEN the check passes as skipped, with the reason it carries
    assert isinstance(check, Check)
    assert (check.passed, check.skipped, check.observed) == (True, True, NO_INPUT_EXAMPLE)


PLAN = ProofPlan(input_example="input_example.json", has_signature=True)


def test_a_passed_proof_is_one_passed_check_per_stage() -> None:
    # WHEN the runner reports every stage passed
    checks = outcome_checks(PLAN, ProofOutcome("output", True))
    # THEN there is one passed check per stage, in order
    assert [(check.name, check.passed) for check in checks] == [
        ("proof:environment", True),
        ("proof:load", True),
        ("proof:input", True),
        ("proof:predict", True),
        ("proof:output", True),
    ]


@pytest.mark.parametrize(
    ("outcome", "failed"),
    [
        (ProofOutcome("environment", False, "No solution found"), ("proof:environment", ENVIRONMENT_UNRESOLVABLE)),
        (
            ProofOutcome("environment", False, "error: No interpreter found for Python 3.9.1"),
            ("proof:environment", PYTHON_UNAVAILABLE),
        ),
        (ProofOutcome("load", False, "UnpicklingError"), ("proof:load", LOAD_FAILED)),
        (ProofOutcome("input", False, "Shape of input"), ("proof:input", SIGNATURE_MISMATCH)),
        (ProofOutcome("predict", False, "ValueError"), ("proof:predict", PREDICT_FAILED)),
        (ProofOutcome("output", False, "dtype int64"), ("proof:output", SIGNATURE_MISMATCH)),
        (ProofOutcome("load", False, "", timed_out=True), ("proof:load", PROOF_TIMEOUT)),
    ],
    ids=["unresolvable", "no interpreter", "load", "input", "predict", "output", "timeout"],
)
def test_a_failed_stage_is_the_last_check_with_its_reason(outcome: ProofOutcome, failed: tuple[str, str]) -> None:
    # WHEN the runner reports a stage failed
    checks = outcome_checks(PLAN, outcome)
    # THEN the stages before it passed and it is the one failed check, with the reason and the error's text
    assert _failed(checks) == [failed]
    assert all(check.passed for check in checks[:-1])
    assert outcome.error in checks[-1].message


def test_without_a_signature_the_schema_stages_are_skipped_not_passed() -> None:
    # GIVEN a model without a signature whose proof passed
    checks = outcome_checks(ProofPlan("input_example.json", has_signature=False), ProofOutcome("output", True))
    # THEN input and output say there was nothing to check them against
    skipped = {check.name for check in checks if check.skipped}
    assert skipped == {"proof:input", "proof:output"}


def test_a_proof_with_the_provers_own_packages_does_not_claim_the_declared_environment() -> None:
    # WHEN a proof ran with env_manager local
    checks = outcome_checks(PLAN, ProofOutcome("output", True), declared_environment=False)
    # THEN its environment check is a skip that says so
    assert (checks[0].name, checks[0].skipped) == ("proof:environment", True)
    assert "local" in checks[0].message


def test_the_error_is_cut_to_its_last_lines() -> None:
    # GIVEN a long traceback with blank lines
    text = "\n".join(f"line {n}\n" for n in range(100))
    # WHEN cut
    tail = error_tail(text, lines=3, chars=1000)
    # THEN its last three non-blank lines remain
    assert tail == "line 97\nline 98\nline 99"
    assert len(error_tail("x" * 5000, chars=100)) == 100
