"""Model proofs on real scikit-learn and custom pyfunc models saved by MLflow into a temp dir.

Which path each test takes:
- env_manager="local" (the dev venv's interpreter and packages, in a process of its own): the good model, the
  signature mismatch, no input example, the corrupt pickle, the loader that never returns, the loader that fills
  the disk, the predict that raises, the credentials check.
- env_manager="uv", offline with no index and no wheelhouse: the model that requires a package that does not exist
  (uv refuses to resolve it without reaching any network). Skipped when no `uv` binary is found.
- env_manager="uv", offline from the wheelhouse `make wheelhouse` prepares (`.cache/wheelhouse`, the dev venv's
  pins): the good model in the environment it declares. Skipped when the wheelhouse or uv is missing.

No test reaches beyond loopback: uv runs with UV_OFFLINE=1 and UV_NO_INDEX=1, pip would run with PIP_NO_INDEX=1.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow
import numpy as np
import pytest
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel
from sklearn.linear_model import LogisticRegression

from functions.adapters.model_proof import ModelProver, ProofRun, ProofSettings
from functions.domain.proof import (
    ENVIRONMENT_UNRESOLVABLE,
    LOAD_FAILED,
    NO_INPUT_EXAMPLE,
    PREDICT_FAILED,
    PROOF_TIMEOUT,
    PYTHON_UNAVAILABLE,
    SIGNATURE_MISMATCH,
)

pytestmark = pytest.mark.slow
WHEELHOUSE = Path(__file__).resolve().parents[2] / ".cache" / "wheelhouse"
X = np.random.RandomState(0).rand(20, 3)
Y = (X[:, 0] > 0.5).astype(int)
# The custom models below are pickled with their code, as a user's would be: the proof's process cannot import tests.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(autouse=True)
def sandbox_env() -> None:
    """These tests need no sandbox: they prove model directories on disk."""


def _classifier() -> LogisticRegression:
    return LogisticRegression().fit(X, Y)


def _save(path: Path, **kwargs: Any) -> Path:
    mlflow.sklearn.save_model(_classifier(), path, serialization_format="cloudpickle", **kwargs)
    return path


def _prove(model: Path, **settings: Any) -> ProofRun:
    signature = "signature:" in (model / "MLmodel").read_text()
    return ModelProver(ProofSettings(**{"env_manager": "local", **settings})).prove(model, has_signature=signature)


def _failed(run: ProofRun) -> list[tuple[str, Any]]:
    return [(check.name, check.observed) for check in run.checks if not check.passed]


class _Sleeper(PythonModel):
    def load_context(self, context: Any) -> None:
        import os

        # Only in the proof's process (its HOME is the proof's scratch directory), not while MLflow saves the model
        # and loads it to infer its signature.
        if os.path.basename(os.environ.get("HOME", "")).startswith("proof-"):
            time.sleep(3600)

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input


class _DiskFiller(PythonModel):
    def load_context(self, context: Any) -> None:
        import os

        if os.path.basename(os.environ.get("HOME", "")).startswith("proof-"):
            with open("filler.bin", "wb") as file:
                for _ in range(64):
                    file.write(b"\0" * 1024 * 1024)

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input


class _Failing(PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        import os

        if os.path.basename(os.environ.get("HOME", "")).startswith("proof-"):
            raise ZeroDivisionError("the model cannot predict")
        return model_input


class _NoCredentials(PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        import os

        leaked = sorted(name for name in os.environ if name.startswith(("AWS_", "MLFLOW_TRACKING_")))
        if leaked:
            raise RuntimeError(f"the proof can read {leaked}")
        return model_input


def test_a_good_model_passes_every_stage(tmp_path: Path) -> None:
    # GIVEN a scikit-learn model saved with its input example (and the signature MLflow infers from it)
    model = _save(tmp_path / "good", input_example=X[:3])
    # WHEN it is proved with the dev venv's packages
    run = _prove(model)
    # THEN every stage passed, from load to the output's check against the signature
    assert _failed(run) == []
    assert [check.name for check in run.checks] == [
        "proof:environment",
        "proof:load",
        "proof:input",
        "proof:predict",
        "proof:output",
    ]


def test_an_input_example_that_does_not_match_the_signature_fails(tmp_path: Path) -> None:
    # GIVEN a model whose signature says 3 float columns but whose input example has 4
    signature = infer_signature(X, Y)
    model = _save(tmp_path / "mismatch", signature=signature, input_example=np.random.RandomState(1).rand(2, 4))
    # WHEN it is proved
    run = _prove(model)
    # THEN the input stage fails with signature_mismatch and the schema error's last lines
    assert _failed(run) == [("proof:input", SIGNATURE_MISMATCH)]
    assert "shape" in run.checks[-1].message.lower()


def test_a_model_without_an_input_example_fails_before_anything_runs(tmp_path: Path) -> None:
    # GIVEN a model saved with a signature but no input example
    model = _save(tmp_path / "no-example", signature=infer_signature(X, Y))
    # WHEN it is proved, and proved again with a policy that skips such models
    failed = _prove(model)
    skipped = _prove(model, missing_example="skip")
    # THEN the first is a failed no_input_example check, the second a skipped one
    assert _failed(failed) == [("proof:input", NO_INPUT_EXAMPLE)]
    assert (skipped.checks[0].skipped, skipped.checks[0].passed) == (True, True)


def test_a_corrupt_pickle_fails_to_load(tmp_path: Path) -> None:
    # GIVEN a good model whose pickle was then overwritten with garbage
    model = _save(tmp_path / "corrupt", input_example=X[:3])
    (model / "model.pkl").write_bytes(b"\x80\x05not a pickle at all")
    # WHEN it is proved
    run = _prove(model)
    # THEN load fails, and the check carries the unpickling error
    assert _failed(run) == [("proof:load", LOAD_FAILED)]
    assert "pickle" in run.checks[-1].message.lower() or "load" in run.checks[-1].message.lower()


def test_a_loader_that_never_returns_times_out(tmp_path: Path) -> None:
    # GIVEN a custom pyfunc whose load_context sleeps for an hour
    model = tmp_path / "sleeper"
    mlflow.pyfunc.save_model(model, python_model=_Sleeper(), input_example=X[:2])
    # WHEN it is proved with a 20-second timeout
    started = time.monotonic()
    run = _prove(model, timeout_seconds=20)
    # THEN the proof ends at the timeout with proof_timeout at the load stage, its process group killed
    assert _failed(run) == [("proof:load", PROOF_TIMEOUT)]
    assert time.monotonic() - started < 40


def test_processes_of_one_version_share_its_deadline_whatever_each_ones_timeout(tmp_path: Path) -> None:
    # GIVEN the loader that never returns, and a deadline 8 s away although each process may take 600 s
    model = tmp_path / "sleeper"
    mlflow.pyfunc.save_model(model, python_model=_Sleeper(), input_example=X[:2])
    started = time.monotonic()
    # WHEN it is proved before that deadline, and again once the deadline has passed
    run = _prove(model, timeout_seconds=600, deadline=started + 8)
    late = _prove(model, timeout_seconds=600, deadline=time.monotonic() - 1)
    # THEN the first is killed at the deadline (proof_timeout at the load stage), and the second starts no process:
    # proof_timeout at once, saying the version's time was used up
    assert _failed(run) == [("proof:load", PROOF_TIMEOUT)]
    assert time.monotonic() - started < 60
    assert _failed(late) == [("proof:environment", PROOF_TIMEOUT)]
    assert "used up" in late.checks[-1].message


def test_a_loader_that_fills_the_disk_is_stopped_at_the_file_size_limit(tmp_path: Path) -> None:
    # GIVEN a custom pyfunc whose load_context writes 64 MiB
    model = tmp_path / "filler"
    mlflow.pyfunc.save_model(model, python_model=_DiskFiller(), input_example=X[:2])
    # WHEN it is proved with a 8 MiB limit on every file it writes
    run = _prove(model, max_file_bytes=8 * 1024 * 1024)
    # THEN its write fails at the limit (Python ignores SIGXFSZ, so EFBIG) while loading: a failed check, not a
    # full disk
    assert _failed(run) == [("proof:load", LOAD_FAILED)]
    assert "File too large" in run.checks[-1].message


def test_a_model_whose_predict_raises_fails_predict(tmp_path: Path) -> None:
    # GIVEN a custom pyfunc whose predict raises in the proof's process
    model = tmp_path / "failing"
    mlflow.pyfunc.save_model(model, python_model=_Failing(), input_example=X[:2])
    # WHEN it is proved
    run = _prove(model)
    # THEN predict fails with the exception's last lines
    assert _failed(run) == [("proof:predict", PREDICT_FAILED)]
    assert "ZeroDivisionError: the model cannot predict" in run.checks[-1].message


def test_the_proof_runs_without_the_callers_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the caller holds AWS credentials and an MLflow token, and a model whose predict fails if it sees any
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "token")
    model = tmp_path / "nosy"
    mlflow.pyfunc.save_model(model, python_model=_NoCredentials(), input_example=X[:2])
    # WHEN it is proved
    run = _prove(model)
    # THEN it passes: none of them reached the model's process
    assert _failed(run) == []


def _uv() -> str | None:
    found = shutil.which("uv")
    if found is None:
        try:
            from uv import find_uv_bin

            found = find_uv_bin()
        except (ImportError, FileNotFoundError):
            return None
    return found


needs_uv = pytest.mark.skipif(_uv() is None, reason="no uv binary (pip install uv, see requirements-dev.txt)")


@needs_uv
def test_a_model_requiring_a_package_that_does_not_exist_is_unresolvable(tmp_path: Path) -> None:
    # GIVEN a model whose requirements name a package no index has
    model = _save(
        tmp_path / "unresolvable",
        input_example=X[:3],
        pip_requirements=["registry-autopilot-no-such-package==1.0"],
    )
    # WHEN uv builds its environment offline, with no index
    run = _prove(model, env_manager="uv", offline=True, env_cache_dir=tmp_path / "envs")
    # THEN the environment stage fails with environment_unresolvable and uv's resolution error
    assert _failed(run) == [("proof:environment", ENVIRONMENT_UNRESOLVABLE)]
    assert "uv" in run.checks[-1].message or "resolv" in run.checks[-1].message


@needs_uv
@pytest.mark.parametrize(
    ("declared", "reason"),
    [
        # a patch release of this interpreter's Python that is not installed: uv is asked for the minor version,
        # finds this one, and the build goes on to the requirements (which do not resolve offline, on purpose)
        (f"{sys.version_info.major}.{sys.version_info.minor}.0", ENVIRONMENT_UNRESOLVABLE),
        ("3.99.1", PYTHON_UNAVAILABLE),  # no interpreter of that minor version, and downloads are off
    ],
)
def test_a_model_is_proved_with_any_patch_release_of_its_python(tmp_path: Path, declared: str, reason: str) -> None:
    # GIVEN a model whose python_env.yaml declares `declared`
    model = _save(tmp_path / "model", input_example=X[:3], pip_requirements=["registry-autopilot-no-such-package==1.0"])
    python_env = model / "python_env.yaml"
    original = python_env.read_text()
    python_env.write_text(re.sub(r"(?m)^python: .*$", f"python: {declared}", original))
    # WHEN uv builds its environment offline
    run = _prove(model, env_manager="uv", offline=True, env_cache_dir=tmp_path / "envs")
    # THEN the environment stage fails with that reason, and the model's own file is unchanged
    assert _failed(run) == [("proof:environment", reason)], run.checks[-1].message
    assert f"python: {declared}" in python_env.read_text()


@needs_uv
@pytest.mark.skipif(not WHEELHOUSE.is_dir(), reason=f"no wheelhouse at {WHEELHOUSE} (make wheelhouse)")
def test_a_good_model_passes_in_its_declared_environment_built_offline(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    # GIVEN a good model (requirements: the dev venv's mlflow, scikit-learn, numpy, pandas... pinned)
    model = _save(tmp_path / "good", input_example=X[:3])
    settings = {"env_manager": "uv", "offline": True, "find_links": (WHEELHOUSE,), "env_cache_dir": tmp_path / "envs"}
    # WHEN uv builds that environment from the wheelhouse, then proves it again with the environment cached
    cold = _prove(model, **settings)
    warm = _prove(model, **settings)
    # THEN both pass every stage; the warm proof reuses the environment
    assert _failed(cold) == [], cold.checks[-1].message
    assert _failed(warm) == []
    record_property("proof_seconds", {"cold": round(cold.seconds, 2), "warm": round(warm.seconds, 2)})
    assert warm.seconds < cold.seconds
