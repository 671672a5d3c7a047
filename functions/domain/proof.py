"""Proving a model: does it load and predict, in the environment it declares, on its own input example?

Pure: what a proof needs before anything runs (`plan_proof`), and what its outcome means as checks
(`outcome_checks`). Running it (a process of its own, its environment built by MLflow) is
`functions.adapters.model_proof`.

Every failure is a failed `Check` named `proof:<stage>` whose `observed` is the reason and whose message ends with
the last lines of the error, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from functions.domain.policy import ENVIRONMENT_FILES, Check

ENVIRONMENT_UNRESOLVABLE = "environment_unresolvable"
PYTHON_UNAVAILABLE = "python_unavailable"
LOAD_FAILED = "load_failed"
PREDICT_FAILED = "predict_failed"
SIGNATURE_MISMATCH = "signature_mismatch"
NO_INPUT_EXAMPLE = "no_input_example"
PROOF_TIMEOUT = "proof_timeout"
TOO_LARGE_FOR_PROOF = "too_large_for_proof"
PROOF_DISABLED = "proof_disabled"
REASONS = (
    ENVIRONMENT_UNRESOLVABLE,
    PYTHON_UNAVAILABLE,
    LOAD_FAILED,
    PREDICT_FAILED,
    SIGNATURE_MISMATCH,
    NO_INPUT_EXAMPLE,
    PROOF_TIMEOUT,
    TOO_LARGE_FOR_PROOF,
    PROOF_DISABLED,
)

STAGES = ("environment", "load", "input", "predict", "output")
"""In the order a proof runs them; the runner reports the stage it reached."""
REASON_OF_STAGE = {
    "environment": ENVIRONMENT_UNRESOLVABLE,
    "load": LOAD_FAILED,
    "input": SIGNATURE_MISMATCH,
    "predict": PREDICT_FAILED,
    "output": SIGNATURE_MISMATCH,
}
INPUT_EXAMPLE_FILES = ("serving_input_example.json", "input_example.json")
MLMODEL = "MLmodel"
ERROR_LINES = 8
ERROR_CHARS = 1200
CAUSE_CHARS = 200
"""Of the error's last line, in the first line of a failed proof check."""
DEFAULT_MAX_MODEL_BYTES = 512 * 1024 * 1024
"""What a proof copies and loads; a larger model is `too_large_for_proof` (its next step: a job of its own)."""

MissingExample = Literal["fail", "skip"]

PYTHON_ENV_FILE = "python_env.yaml"
_DECLARED_PYTHON = re.compile(r"""^python:[ \t]*["']?(\d+)\.(\d+)\.\d+["']?[ \t]*$""", re.MULTILINE)


def minor_python_request(python_env: str) -> str:
    """A model's `python_env.yaml` asking for its Python's minor version (`3.11.7` -> `"3.11"`), for the proof's copy.

    MLflow asks uv for the exact version the file names (`uv venv --python=3.11.7`), and uv then refuses every other
    patch release (verified with uv 0.13: 3.11.5 requested, 3.11.7 installed: "No interpreter found"), so a model
    trained on 3.13.1 could not be proved on a Lambda runtime at 3.13.2. Patch releases of CPython keep its ABI and
    wheels are tagged by minor version (`cp313`), so the same requirements resolve to the same packages. The version
    is quoted: unquoted, YAML reads `3.10` as the number 3.1. A file without a `major.minor.patch` is unchanged.
    """
    return _DECLARED_PYTHON.sub(lambda match: f'python: "{match[1]}.{match[2]}"', python_env, count=1)


@dataclass(frozen=True)
class ProofPlan:
    """A model directory a proof can run on."""

    input_example: str
    has_signature: bool


@dataclass(frozen=True)
class ProofOutcome:
    """What the runner reports: the last stage it reached, whether it passed, and the error's text if not."""

    stage: str
    passed: bool
    error: str = ""
    timed_out: bool = False

    @property
    def reason(self) -> str | None:
        if self.passed:
            return None
        if self.timed_out:
            return PROOF_TIMEOUT
        if self.stage == "environment" and "No interpreter found" in self.error:
            return PYTHON_UNAVAILABLE
        return REASON_OF_STAGE.get(self.stage, LOAD_FAILED)


def plan_proof(
    files: Mapping[str, int],
    *,
    has_signature: bool,
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    missing_example: MissingExample = "fail",
) -> ProofPlan | Check:
    """What the proof will run on, or the check that says why it cannot run.

    `files` maps each file of the model directory (relative path) to its size in bytes.
    """
    if MLMODEL not in files:
        return _failed("proof:load", LOAD_FAILED, "the model directory has no MLmodel")
    size = sum(files.values())
    if size > max_model_bytes:
        return _failed(
            "proof:size",
            TOO_LARGE_FOR_PROOF,
            f"the model is {size} bytes, over the proof's limit of {max_model_bytes}: prove it in a job of its own",
        )
    if not any(name in files for name in ENVIRONMENT_FILES):
        return _failed(
            "proof:environment",
            ENVIRONMENT_UNRESOLVABLE,
            f"the model declares no environment (none of {', '.join(ENVIRONMENT_FILES)})",
        )
    example = next((name for name in INPUT_EXAMPLE_FILES if name in files), None)
    if example is None:
        message = f"the model has no saved input example (none of {', '.join(INPUT_EXAMPLE_FILES)})"
        if missing_example == "skip":
            return Check("proof:input", True, f"{message}: proof skipped", observed=NO_INPUT_EXAMPLE, skipped=True)
        return _failed("proof:input", NO_INPUT_EXAMPLE, message)
    return ProofPlan(input_example=example, has_signature=has_signature)


def outcome_checks(plan: ProofPlan, outcome: ProofOutcome, *, declared_environment: bool = True) -> list[Check]:
    """The proof's checks: one per stage passed, then the failed one with its reason and the error's last lines.

    `declared_environment` is False when the proof ran with the prover's own packages (`env_manager: local`): its
    environment check is then a skip that says so, never a pass."""
    reached = STAGES.index(outcome.stage) if outcome.stage in STAGES else 0
    passed_stages = STAGES if outcome.passed else STAGES[:reached]
    checks = [_passed(stage, plan) for stage in passed_stages]
    if checks and not declared_environment:
        checks[0] = Check(
            "proof:environment", True, "not built: proved with the prover's own packages (local)", skipped=True
        )
    reason = outcome.reason
    if reason is not None:
        stage = outcome.stage if outcome.stage in STAGES else "load"
        what = "timed out" if outcome.timed_out else "failed"
        checks.append(_failed(f"proof:{stage}", reason, f"{stage} {what}", error=outcome.error))
    return checks


def unprovable(*, proofs_enabled: bool, in_bucket: bool, other_failures: int) -> Check | None:
    """Why the gate will not run the proof a policy asks for (a check that says so), or None: run it.

    A deployment that runs no proofs fails the version (a policy that asks for a proof never passes without one);
    a version whose files are not in the artifact bucket (registered by hand from elsewhere) has nothing to load; a
    version that already fails a cheaper check is not proved (10 s or more saved; the verdict is failed anyway)."""
    if not proofs_enabled:
        message = "the policy asks for a proof but this deployment runs none (stack context `proof`, sandbox `proof`)"
        return Check("proof", False, f"{PROOF_DISABLED}: {message}", observed=PROOF_DISABLED)
    if not in_bucket:
        return _failed("proof:load", LOAD_FAILED, "the model's files are not in the artifact bucket: nothing to load")
    if other_failures:
        return Check("proof", True, f"not run: the version fails {other_failures} other check(s)", skipped=True)
    return None


def error_tail(text: str, *, lines: int = ERROR_LINES, chars: int = ERROR_CHARS) -> str:
    """The last `lines` non-blank lines of an error, at most `chars` characters (the end kept)."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    joined = "\n".join(kept)
    return joined[-chars:]


_PASSED = {
    "environment": "the declared environment was built",
    "load": "the model loaded with its flavor",
    "input": "the input example matches the signature's inputs",
    "predict": "the model predicted on its input example",
    "output": "the output matches the signature's outputs",
}


def _passed(stage: str, plan: ProofPlan) -> Check:
    if stage in ("input", "output") and not plan.has_signature:
        return Check(f"proof:{stage}", True, f"no signature to check the {stage} against", skipped=True)
    return Check(f"proof:{stage}", True, _PASSED[stage], source=None if stage == "environment" else plan.input_example)


def _failed(name: str, reason: str, message: str, *, error: str = "") -> Check:
    """The failed check: its first line is the reason, the stage and the error's last line (in a Python traceback, the
    exception: what failed to load or predict), the line the verdict's reasons and notifications carry; then the
    error's last lines."""
    tail = error_tail(error)
    cause = tail.splitlines()[-1].strip()[:CAUSE_CHARS] if tail else ""
    first = f"{reason}: {message}" + (f": {cause}" if cause else "")
    return Check(name, False, first + (f"\n{tail}" if tail else ""), observed=reason)
