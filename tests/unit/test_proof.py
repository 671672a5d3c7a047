"""The proof's domain: what a proof needs before it runs, and what its outcome means as checks."""

from __future__ import annotations

import json

import pytest

from functions.adapters.bucket_proof import _stays_inside, proof_settings
from functions.domain.policy import Check
from functions.domain.ports import VersionInfo
from functions.domain.proof import (
    ENVIRONMENT_UNRESOLVABLE,
    LOAD_FAILED,
    NO_INPUT_EXAMPLE,
    PREDICT_FAILED,
    PROOF_DISABLED,
    PROOF_TIMEOUT,
    PYTHON_UNAVAILABLE,
    SIGNATURE_MISMATCH,
    TOO_LARGE_FOR_PROOF,
    ProofOutcome,
    ProofPlan,
    error_tail,
    minor_python_request,
    outcome_checks,
    plan_proof,
)
from functions.domain.tags import TAG_STATUS, TAG_VERDICT
from functions.domain.validation import ValidationRequest
from functions.routing import ROUTES, VALIDATE, proving
from functions.settings import Settings, function_environment
from tests.builders import BUCKET, ValidationWorld
from tests.fakes import FakeModelProofs

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


# --- the proof as a step of the gate (functions.domain.validation) ----------------------------------------------

PROVED_POLICY = "metrics: {accuracy: {min: 0.8}}\nproof: {level: smoke, missing_example: skip}\n"
LOAD_FAILURE = Check("proof:load", False, "load_failed: load failed\n_pickle.UnpicklingError", observed=LOAD_FAILED)


def _passed_proof() -> list[Check]:
    return [Check(f"proof:{stage}", True, f"{stage} passed") for stage in ("environment", "load", "predict")]


def test_a_policy_that_asks_for_a_proof_gets_its_checks_in_the_verdict(tmp_path) -> None:
    # GIVEN a policy with `proof: smoke` and a deployment whose proofs pass
    proofs = FakeModelProofs(_passed_proof())
    world = ValidationWorld(tmp_path, PROVED_POLICY, proofs=proofs)
    # WHEN a good version is validated
    verdict = world.validator.validate(world.version("1", accuracy=0.9))
    # THEN the model directory in the bucket was proved with the policy's options, and the checks are in the event
    assert proofs.proved == [(BUCKET, "models/churn/1/", True, "skip")]
    assert verdict.status == "passed"
    # AND its processes began one shared timeout, once for the version (BucketModelProofs.begin)
    assert proofs.begun == 1
    assert [c.name for c in world.events.published[-1].checks if c.name.startswith("proof:")] == [
        "proof:environment",
        "proof:load",
        "proof:predict",
    ]


def test_a_model_that_does_not_load_fails_the_verdict_with_the_reason(tmp_path) -> None:
    # GIVEN a proof that ends with load_failed
    world = ValidationWorld(tmp_path, PROVED_POLICY, proofs=FakeModelProofs([LOAD_FAILURE]))
    # WHEN a version whose metrics pass is validated
    verdict = world.validator.validate(world.version("1", accuracy=0.9))
    # THEN it fails, the reason starts with load_failed, and the tag says failed
    assert verdict.status == "failed"
    assert [reason.split(":")[0] for reason in verdict.reasons] == [LOAD_FAILED]
    assert world.check("proof:load").observed == LOAD_FAILED
    assert world.registry.get_version("churn", "1").tags[TAG_STATUS] == "failed"


UNPICKLING_TRACEBACK = """Traceback (most recent call last):
  File "/tmp/proof-x/runner/proof_runner.py", line 61, in _probe
    model = mlflow.pyfunc.load_model(model_dir)
  File "/venv/lib/python3.13/site-packages/mlflow/sklearn/__init__.py", line 410, in _load_model_from_local_file
    return pickle.load(f)
_pickle.UnpicklingError: invalid load key, 'n'.
"""


def test_a_failed_proof_checks_first_line_says_what_failed_and_the_rest_is_the_error() -> None:
    # GIVEN a proof whose load raised
    outcome = ProofOutcome(stage="load", passed=False, error=UNPICKLING_TRACEBACK)
    # WHEN its outcome becomes checks
    [*_, failed] = outcome_checks(ProofPlan("input_example.json", True), outcome)
    # THEN the first line is the reason, the stage and the exception; the lines after it are the error's last lines
    first, *rest = failed.message.splitlines()
    assert first == "load_failed: load failed: _pickle.UnpicklingError: invalid load key, 'n'."
    assert rest == error_tail(UNPICKLING_TRACEBACK).splitlines()


def test_a_failed_proofs_verdict_reasons_are_one_line_with_what_failed_and_the_event_has_it_all(tmp_path) -> None:
    # GIVEN a proof that fails to load the model, with the loader's traceback
    [*_, failed] = outcome_checks(
        ProofPlan("input_example.json", True), ProofOutcome(stage="load", passed=False, error=UNPICKLING_TRACEBACK)
    )
    world = ValidationWorld(tmp_path, PROVED_POLICY, proofs=FakeModelProofs([failed]))
    # WHEN a version whose metrics pass is validated
    verdict = world.validator.validate(world.version("1", accuracy=0.9))
    # THEN the event's reasons (what the failed-verdict notification sends) and the tag's are that check's reason and
    # the first line of its message, the exception included; the event's check keeps the whole message
    reason = "load_failed: load failed: _pickle.UnpicklingError: invalid load key, 'n'."
    event = world.events.published[-1]
    assert verdict.reasons == event.reasons == [reason]
    record = json.loads(world.registry.get_version("churn", "1").tags[TAG_VERDICT])
    assert record["reasons"] == reason
    assert world.check("proof:load").message == failed.message
    assert "_probe" in failed.message


def test_no_proof_runs_for_a_policy_without_one(tmp_path) -> None:
    # GIVEN the default policy (no proof key) and a deployment that could prove
    proofs = FakeModelProofs([LOAD_FAILURE])
    world = ValidationWorld(tmp_path, "metrics: {accuracy: {min: 0.8}}\n", proofs=proofs)
    # WHEN validated
    verdict = world.validator.validate(world.version("1", accuracy=0.9))
    # THEN nothing was proved and no proof check is in the verdict
    assert (proofs.proved, verdict.status) == ([], "passed")
    assert not [c for c in verdict.checks if c.name.startswith("proof")]


def test_a_deployment_that_runs_no_proofs_fails_a_policy_that_asks_for_one(tmp_path) -> None:
    # GIVEN a policy with `proof: smoke` but no prover (the stack's `proof` context off)
    world = ValidationWorld(tmp_path, PROVED_POLICY, proofs=None)
    # WHEN a good version is validated
    verdict = world.validator.validate(world.version("1", accuracy=0.9))
    # THEN it fails with proof_disabled: never a pass without the proof the policy asks for
    assert verdict.status == "failed"
    assert world.check("proof").observed == PROOF_DISABLED


def test_a_version_that_fails_a_cheaper_check_is_not_proved(tmp_path) -> None:
    # GIVEN a version below the metric threshold
    proofs = FakeModelProofs(_passed_proof())
    world = ValidationWorld(tmp_path, PROVED_POLICY, proofs=proofs)
    # WHEN validated
    verdict = world.validator.validate(world.version("1", accuracy=0.5))
    # THEN the proof did not run, and the verdict says so in a skipped check
    assert proofs.proved == []
    assert verdict.status == "failed"
    proof = world.check("proof")
    assert (proof.passed, proof.skipped) == (True, True)
    assert "not run" in proof.message


def test_a_version_whose_files_are_not_in_the_bucket_fails_the_proof(tmp_path) -> None:
    # GIVEN a version registered by hand from a source outside the artifact bucket
    proofs = FakeModelProofs(_passed_proof())
    world = ValidationWorld(tmp_path, "proof: smoke\nartifacts: {environment: false}\n", proofs=proofs)
    world.registry.versions.append(VersionInfo("churn", "1", "s3://elsewhere/m", None))
    # WHEN validated
    verdict = world.validator.validate(ValidationRequest("churn", "1", "corr-1"))
    # THEN there is nothing to load: a failed proof, never a pass
    assert proofs.proved == []
    assert (verdict.status, world.check("proof:load").observed) == ("failed", LOAD_FAILED)


# --- the validate function's proof settings (functions.settings, functions.adapters.bucket_proof) -----------------


def test_only_the_validate_function_gets_proof_settings_and_only_when_proofs_are_on() -> None:
    # GIVEN the functions' environment with proofs on, and without
    names = {"bucket": "b", "artifact_root_prefix": "m", "event_bus_name": "e", "idempotency_table": "t"}
    names |= {"queue_url": "q", "dead_letter_queue_url": "d", "tracking_uri": "https://mlflow.example.com"}
    on = {"proof": "uv", "proof_timeout_seconds": 600, "proof_index_url": "https://mirror.example.com/simple"}
    on |= {"proof_python_downloads": True}
    # WHEN each route's environment is built
    proving_validate = function_environment(proving(VALIDATE), **names, **on)
    others = [function_environment(route, **names, **on) for route in ROUTES if route is not VALIDATE]
    off = function_environment(VALIDATE, **names)
    # THEN validate reads them back as the prover's settings; no other function, and no function by default, has them
    settings = proof_settings(Settings.model_validate(proving_validate))
    assert (settings.env_manager, settings.timeout_seconds) == ("uv", 600.0)
    assert settings.index_url == "https://mirror.example.com/simple"
    assert settings.python_downloads is True
    assert all("PROOF" not in env for env in [*others, off])
    # AND MLflow's per-request timeout fits in what the proof leaves of the function's timeout
    assert int(proving_validate["MLFLOW_HTTP_REQUEST_TIMEOUT"]) * 10 <= proving(VALIDATE).timeout_seconds - 600


@pytest.mark.parametrize(
    ("name", "inside"),
    [("model.pkl", True), ("code/util.py", True), ("../other/model.pkl", False), ("a//b", False), ("/etc/x", False)],
)
def test_a_model_file_whose_key_would_leave_the_directory_is_refused(name: str, inside: bool) -> None:
    assert _stays_inside(name) is inside


@pytest.mark.parametrize(
    ("declared", "requested"),
    [
        (
            "python: 3.11.7\nbuild_dependencies:\n- pip==23.2.1\n",
            'python: "3.11"\nbuild_dependencies:\n- pip==23.2.1\n',
        ),
        ("python: '3.10.13'\n", 'python: "3.10"\n'),  # quoted: YAML would read 3.10 as 3.1
        ('python: "3.13.1"  \n', 'python: "3.13"\n'),
        ("python: 3.12\n", "python: 3.12\n"),  # already a minor version
        ("python: latest\n", "python: latest\n"),
        ("dependencies:\n- python: 3.11.7\n", "dependencies:\n- python: 3.11.7\n"),  # not the top-level key
        ("", ""),
    ],
)
def test_the_proof_asks_uv_for_the_models_minor_python_not_its_patch_release(declared: str, requested: str) -> None:
    # GIVEN a model's python_env.yaml; WHEN the proof's copy of it is rewritten; THEN only a top-level patch version
    # becomes its quoted minor version
    assert minor_python_request(declared) == requested
