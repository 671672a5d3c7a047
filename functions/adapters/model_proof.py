"""Runs a model proof (`functions.domain.proof`) in a process of its own.

Loading a model runs its code (pickle, cloudpickle, a custom pyfunc), so the proof never runs in the caller's
process. `ModelProver.prove` copies the model directory into a scratch directory and runs `proof_runner.py` there:

- with an environment built from an allowlist: no AWS_* or MLFLOW_TRACKING_* variables (no credentials, no
  registry), HOME and TMPDIR inside the scratch directory, and the package-index settings of `ProofSettings` only;
- in a session of its own, killed as a whole group at `timeout_seconds` (`proof_timeout`);
- with RLIMIT_FSIZE capping every file it writes (a model that fills the disk gets EFBIG, or dies of SIGXFSZ: a failed check either way);
- with its output captured to files and only their last lines kept.

`env_manager="uv"` (the default) builds the model's declared environment with uv through MLflow
(`proof_runner.py build`); `"virtualenv"` does the same with pyenv and pip (MLflow requires pyenv for it); `"local"`
skips the build and proves the model with this process's own interpreter and packages (tests and the dev venv).
Nothing here raises for a bad model: every outcome is a list of checks.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess  # nosec B404: the proof's whole point is a process of its own
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from functions.domain.policy import Check
from functions.domain.proof import (
    DEFAULT_MAX_MODEL_BYTES,
    PYTHON_ENV_FILE,
    MissingExample,
    ProofOutcome,
    minor_python_request,
    outcome_checks,
    plan_proof,
)
from functions.domain.reference import ReferenceScore, ScoreSpec, scored
from functions.domain.reference import failure as reference_failure

RUNNER = Path(__file__).with_name("proof_runner.py")
MIN_PROCESS_SECONDS = 1.0
"""With less than this left before the deadline, no process is started: the check is `proof_timeout` at once."""
MAX_PYTHON_ENV_BYTES = 64 * 1024
"""A larger python_env.yaml is left as it is (MLflow's own parser then decides); a real one is a few lines."""
EnvManager = Literal["uv", "virtualenv", "local"]
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024 * 1024
OUTPUT_TAIL_BYTES = 64 * 1024
# Passed through to the proof's process; nothing else of the caller's environment is.
_PASSED_THROUGH = ("LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR")


@dataclass(frozen=True)
class ProofSettings:
    env_manager: EnvManager = "uv"
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    missing_example: MissingExample = "fail"
    env_cache_dir: Path | None = None
    """Where built environments (and uv's package cache) are kept between proofs; None: a fresh one per proof."""
    index_url: str | None = None
    """A package index (a mirror, CodeArtifact); None with `find_links`: no index at all."""
    find_links: tuple[Path, ...] = ()
    """Local wheel directories (a wheelhouse) to install from."""
    offline: bool = False
    """No network at all: only `find_links` and the cache."""
    python_downloads: bool = False
    """Whether uv may download the Python the model declares when no interpreter on PATH matches it."""
    extra_path: tuple[Path, ...] = field(default_factory=tuple)
    deadline: float | None = None
    """A `time.monotonic()` instant no process may outlive, whatever `timeout_seconds` leaves: the proof and the
    reference scorings of one version share one timeout (`BucketModelProofs.begin`)."""


@dataclass(frozen=True)
class ProofRun:
    checks: list[Check]
    seconds: float
    stage: str


class ModelProver:
    def __init__(self, settings: ProofSettings | None = None) -> None:
        self._settings = settings or ProofSettings()

    def prove(self, model_dir: Path, *, has_signature: bool) -> ProofRun:
        started = time.monotonic()
        plan = plan_proof(
            _files(model_dir),
            has_signature=has_signature,
            max_model_bytes=self._settings.max_model_bytes,
            missing_example=self._settings.missing_example,
        )
        if isinstance(plan, Check):
            return ProofRun([plan], time.monotonic() - started, plan.name.removeprefix("proof:"))
        with tempfile.TemporaryDirectory(prefix="proof-") as scratch_dir:
            outcome = self._run(model_dir, Path(scratch_dir))
        checks = outcome_checks(plan, outcome, declared_environment=self._settings.env_manager != "local")
        return ProofRun(checks, time.monotonic() - started, outcome.stage)

    def score(self, model_dir: Path, dataset: Path, spec: ScoreSpec) -> ReferenceScore | Check:
        """The model scored on a reference dataset in a process of its own (`proof_runner.py score`), or the failed
        check `reference` with the reason; never raises for a bad model or dataset."""
        files = _files(model_dir)
        planned = plan_proof(
            files, has_signature=False, max_model_bytes=self._settings.max_model_bytes, missing_example="skip"
        )
        if isinstance(planned, Check) and not planned.skipped:  # no input example is no reason not to score
            return reference_failure(str(planned.observed), planned.message.split(": ", 1)[-1])
        with tempfile.TemporaryDirectory(prefix="proof-") as scratch_dir:
            scratch = Path(scratch_dir)
            spec_file = scratch / "spec.json"
            spec_file.write_text(json.dumps(spec.runner_spec(scratch / "dataset")))
            shutil.copyfile(dataset, scratch / "dataset")
            outcome = self._run(model_dir, scratch, then="score", spec=spec_file)
            reported = _result(scratch / "result.json")
        return scored(outcome, reported)

    def _run(self, model_dir: Path, scratch: Path, *, then: str = "probe", spec: Path | None = None) -> ProofOutcome:
        timeout = self._settings.timeout_seconds
        if self._settings.deadline is not None:
            timeout = min(timeout, self._settings.deadline - time.monotonic())
            if timeout < MIN_PROCESS_SECONDS:
                why = f"the version's proof timeout ({self._settings.timeout_seconds:g} s) was used up by its earlier processes"
                return ProofOutcome("environment", False, why, timed_out=True)
        model = scratch / "model"
        shutil.copytree(model_dir, model, symlinks=False)
        python_env = model / PYTHON_ENV_FILE
        if python_env.is_file() and python_env.stat().st_size <= MAX_PYTHON_ENV_BYTES:  # the copy; never the model's
            python_env.write_text(minor_python_request(python_env.read_text(errors="replace")))
        (scratch / "tmp").mkdir()
        result = scratch / "result.json"
        # A directory of its own: run from `functions/adapters/`, its `secrets.py` would shadow the standard library's.
        runner = scratch / "runner" / RUNNER.name
        runner.parent.mkdir()
        shutil.copyfile(RUNNER, runner)
        env_root = self._settings.env_cache_dir or scratch / "envs"
        tail = ["--spec", str(spec)] if spec is not None else []
        if self._settings.env_manager == "local":
            command = [sys.executable, str(runner), then, "--model", str(model), "--result", str(result), *tail]
        else:
            command = [sys.executable, str(runner), "build", "--model", str(model), "--result", str(result)]
            command += ["--env-root", str(env_root), "--env-manager", self._settings.env_manager]
            command += ["--import-path", os.pathsep.join(_import_path()), "--then", then, *tail]
        output = scratch / "output.log"
        timed_out = False
        with output.open("wb") as sink:
            process = subprocess.Popen(  # nosec B603: our own runner, no shell
                command,
                cwd=scratch,
                env=self.environment(scratch, env_root),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._limits,
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(process)
        return _outcome(result, output, returncode=process.returncode, timed_out=timed_out)

    def _limits(self) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (self._settings.max_file_bytes, self._settings.max_file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def environment(self, scratch: Path, env_root: Path) -> dict[str, str]:
        """The proof's process environment: an allowlist, never the caller's credentials."""
        settings = self._settings
        path = [*map(str, settings.extra_path), *_tool_dirs(), "/usr/local/bin", "/usr/bin", "/bin"]
        env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
        env |= {
            "PATH": os.pathsep.join(dict.fromkeys(path)),
            "HOME": str(scratch),
            "TMPDIR": str(scratch / "tmp"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            # uv: where it caches, what it may install from, and no Python downloads unless asked.
            "UV_CACHE_DIR": str(env_root / "uv-cache"),
            "UV_PYTHON_DOWNLOADS": "automatic" if settings.python_downloads else "never",
            "UV_NO_CONFIG": "1",
            # pip (env_manager="virtualenv"): the same, and no pip.conf of the machine's.
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INPUT": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        env |= _index_environment(settings)
        return env


def _index_environment(settings: ProofSettings) -> dict[str, str]:
    env: dict[str, str] = {}
    if settings.find_links:
        links = " ".join(str(path) for path in settings.find_links)
        env |= {"UV_FIND_LINKS": ",".join(str(path) for path in settings.find_links), "PIP_FIND_LINKS": links}
    if settings.index_url:
        env |= {"UV_DEFAULT_INDEX": settings.index_url, "PIP_INDEX_URL": settings.index_url}
    elif settings.find_links:
        env |= {"UV_NO_INDEX": "1", "PIP_NO_INDEX": "1"}
    if settings.offline:
        env |= {"UV_OFFLINE": "1", "PIP_NO_INDEX": "1"}
    return env


def _tool_dirs() -> list[str]:
    """uv (on PATH, else the binary the `uv` wheel ships) and this interpreter's own directory, which uv finds
    when the model declares this Python."""
    dirs: list[str] = []
    found = shutil.which("uv")
    if found is None:
        try:
            from uv import find_uv_bin  # type: ignore[import-not-found,unused-ignore]

            found = find_uv_bin()
        except (ImportError, FileNotFoundError):
            found = None
    if found is not None:
        dirs.append(str(Path(found).parent))
    dirs.append(str(Path(sys.base_prefix) / "bin"))
    return dirs


def _import_path() -> list[str]:
    """This process's package directories beyond the interpreter's own (Lambda's layer, /var/task): the build half
    of the runner imports MLflow from them. The environment allowlist passes no PYTHONPATH."""
    own = {str(Path(path)) for path in (sys.prefix, sys.base_prefix)}
    return [entry for entry in sys.path if entry and Path(entry).is_dir() and not any(entry.startswith(p) for p in own)]


def _files(model_dir: Path) -> Mapping[str, int]:
    return {str(path.relative_to(model_dir)): path.lstat().st_size for path in model_dir.rglob("*") if path.is_file()}


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _outcome(result: Path, output: Path, *, returncode: int | None, timed_out: bool) -> ProofOutcome:
    log = _tail(output)
    try:
        reported = json.loads(result.read_text())
        stage, passed, error = str(reported["stage"]), bool(reported["passed"]), str(reported.get("error") or "")
    except (OSError, ValueError, KeyError, TypeError):
        stage, passed, error = "environment", False, ""
    if timed_out:
        return ProofOutcome(stage, False, f"no result after the proof's timeout\n{log}", timed_out=True)
    if passed and returncode == 0:
        return ProofOutcome(stage, True)
    if not error:
        error = f"the proof's process ended with status {returncode}\n{log}"
    return ProofOutcome(stage, False, error)


def _result(path: Path) -> dict[str, object]:
    try:
        reported = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return reported if isinstance(reported, dict) else {}


def _tail(path: Path) -> str:
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - OUTPUT_TAIL_BYTES))
        return file.read().decode("utf-8", "replace")
