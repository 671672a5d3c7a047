"""The proof as a step of the pipeline, in the session sandbox: upload -> register -> validate (with the proof) ->
aliases, through the real handlers and workers.

Path: env_manager="local" (the sandbox's own interpreter and packages, in a process of its own; no environment is
built, nothing downloaded), as `python -m sandbox` runs it. The policy is tests/integration/policies/proof-smoke.yaml.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow.sklearn
import numpy as np
import pytest
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel
from sklearn.linear_model import LogisticRegression

from functions.domain.proof import LOAD_FAILED, PREDICT_FAILED
from functions.domain.tags import TAG_STATUS

pytestmark = pytest.mark.slow
MODEL = "proof-smoke"
VALIDATED = "Model Version Validated"
# The custom model below is pickled with its code, as a user's would be: the proof's process cannot import tests.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _FailsWhenProved(PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        import os

        # Only in the proof's process (its HOME is the proof's scratch directory), not while MLflow saves the model.
        if os.path.basename(os.environ.get("HOME", "")).startswith("proof-"):
            raise ZeroDivisionError("the model cannot predict")
        return model_input


@pytest.fixture(scope="module")
def proved_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LogisticRegression saved with its signature and input example (what the proof predicts on)."""
    features = np.random.RandomState(0).rand(30, 3)
    model = LogisticRegression().fit(features, (features[:, 0] > 0.5).astype(int))
    path = tmp_path_factory.mktemp("proved") / "model"
    mlflow.sklearn.save_model(
        model,
        path,
        signature=infer_signature(features[:5], model.predict(features[:5])),
        input_example=features[:2],
        pip_requirements=["scikit-learn"],
        serialization_format="cloudpickle",  # model.pkl: a pickle, as many training jobs write
    )
    return path


def _verdict(sandbox, version: str, model: str = MODEL) -> dict:  # type: ignore[no-untyped-def]
    [event] = [e for e in sandbox.observed_events(VALIDATED, model_name=model) if e["detail"]["version"] == version]
    return event["detail"]


def test_a_model_that_loads_gets_its_aliases_and_a_corrupt_one_is_refused_with_load_failed(
    sandbox, mlflow_client, wait_quiet, proved_model_dir, tmp_path
):
    # GIVEN a policy with `proof: smoke` and a good model uploaded
    sandbox.upload_dir(proved_model_dir, f"models/{MODEL}/good/")
    # WHEN the pipeline settles
    wait_quiet(timeout=120)
    # THEN the version passed with every proof stage in its checks, and got the policy's aliases
    good = _verdict(sandbox, "1")
    assert good["status"] == "passed", good["reasons"]
    proof = {c["name"]: c for c in good["checks"] if c["name"].startswith("proof:")}
    assert list(proof) == ["proof:environment", "proof:load", "proof:input", "proof:predict", "proof:output"]
    assert all(check["passed"] for check in proof.values())
    assert proof["proof:environment"]["skipped"]  # local: proved with the sandbox's packages, said so
    assert mlflow_client.get_registered_model(MODEL).aliases == {"challenger": "1", "champion": "1"}

    # GIVEN the same model with its pickle replaced by bytes that do not unpickle
    corrupt = tmp_path / "corrupt"
    shutil.copytree(proved_model_dir, corrupt)
    assert (corrupt / "model.pkl").is_file()
    (corrupt / "model.pkl").write_bytes(b"not a pickle at all")
    sandbox.upload_dir(corrupt, f"models/{MODEL}/corrupt/")
    # WHEN the pipeline settles
    wait_quiet(timeout=120)
    # THEN its verdict failed with load_failed and the loader's error, and no alias moved
    bad = _verdict(sandbox, "2")
    assert bad["status"] == "failed"
    [failed] = [c for c in bad["checks"] if not c["passed"]]
    assert (failed["name"], failed["observed"]) == ("proof:load", LOAD_FAILED)
    assert "UnpicklingError" in failed["message"] or "pickle" in failed["message"]
    assert mlflow_client.get_model_version(MODEL, "2").tags[TAG_STATUS] == "failed"
    assert mlflow_client.get_registered_model(MODEL).aliases == {"challenger": "1", "champion": "1"}


def test_a_model_whose_predict_raises_is_refused_with_predict_failed(sandbox, mlflow_client, wait_quiet, tmp_path):
    # GIVEN a policy with `proof: smoke` and a custom pyfunc that loads but whose predict raises
    model_dir = tmp_path / "failing"
    mlflow.pyfunc.save_model(model_dir, python_model=_FailsWhenProved(), input_example=np.zeros((2, 3)))
    sandbox.upload_dir(model_dir, "models/proof-predict/1/")
    # WHEN the pipeline settles
    wait_quiet(timeout=120)
    # THEN the verdict failed at predict with the exception's text, after load passed, and it has no alias
    detail = _verdict(sandbox, "1", model="proof-predict")
    assert detail["status"] == "failed"
    checks = {c["name"]: c for c in detail["checks"] if c["name"].startswith("proof:")}
    assert checks["proof:load"]["passed"]
    assert (checks["proof:predict"]["passed"], checks["proof:predict"]["observed"]) == (False, PREDICT_FAILED)
    assert "ZeroDivisionError: the model cannot predict" in checks["proof:predict"]["message"]
    assert mlflow_client.get_registered_model("proof-predict").aliases == {}
