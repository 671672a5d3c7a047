"""Reference data as a step of the pipeline, in the session sandbox: upload -> register -> validate (the candidate and
champion scored on the platform's CSV, each in a proof process of its own) -> aliases.

Path: env_manager="local" (the sandbox's own interpreter and packages, scikit-learn among them); the models are saved
without an input example, so the smoke proof is a skip (`missing_example: skip`) and each version costs one scoring
process. The policy is tests/integration/policies/reference-gate.yaml.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from functions.domain.reference_policy import ReferenceRule
from functions.domain.tags import REFERENCE_TAG_PREFIX, TAG_STATUS

pytestmark = pytest.mark.slow
MODEL = "reference-gate"
DATASET = "datasets/reference-gate/holdout.csv"
VALIDATED = "Model Version Validated"
FEATURES = np.random.RandomState(3).rand(60, 3)
LABELS = (FEATURES[:, 0] > 0.5).astype(int)


def _model(tmp_path: Path, name: str, labels: np.ndarray, self_reported: float) -> Path:
    """A classifier trained on `labels`, whose metrics.json reports `self_reported` accuracy."""
    path = tmp_path / name
    model = LogisticRegression().fit(pd.DataFrame(FEATURES, columns=["a", "b", "c"]), labels)
    mlflow.sklearn.save_model(model, path, pip_requirements=["scikit-learn"])
    (path / "metrics.json").write_text(json.dumps({"accuracy": self_reported}))
    return path


def _verdict(sandbox, version: str) -> dict:  # type: ignore[no-untyped-def]
    [event] = [e for e in sandbox.observed_events(VALIDATED, model_name=MODEL) if e["detail"]["version"] == version]
    return event["detail"]


def test_a_candidate_worse_on_the_platform_s_rows_fails_though_it_reports_a_better_accuracy(
    sandbox, mlflow_client, wait_quiet, tmp_path
):
    # GIVEN the platform's holdout CSV in the bucket, and a champion trained on the true labels (reports 0.80)
    holdout = pd.DataFrame(FEATURES, columns=["a", "b", "c"]).assign(label=LABELS)
    sandbox.put_object(DATASET, holdout.to_csv(index=False))
    sandbox.upload_dir(_model(tmp_path, "good", LABELS, 0.80), f"models/{MODEL}/good/")
    wait_quiet(timeout=180)
    champion = _verdict(sandbox, "1")
    assert champion["status"] == "passed", champion["reasons"]
    assert mlflow_client.get_registered_model(MODEL).aliases.get("champion") == "1"
    # WHEN a candidate trained on flipped labels, which reports 0.99 about itself, is uploaded
    sandbox.upload_dir(_model(tmp_path, "flipped", 1 - LABELS, 0.99), f"models/{MODEL}/flipped/")
    wait_quiet(timeout=180)
    # THEN the comparison used both versions' scores on the CSV, with its source, and refused the candidate
    candidate = _verdict(sandbox, "2")
    assert candidate["status"] == "failed"
    checks = {check["name"]: check for check in candidate["checks"]}
    compare = checks["compare:champion:accuracy"]
    version_id = sandbox.client("s3").head_object(Bucket=sandbox.bucket, Key=DATASET)["VersionId"]
    assert compare["source"] == f"reference:{DATASET}@{version_id}"
    assert not compare["passed"]
    assert compare["observed"] < 0.5 < compare["threshold"]
    assert checks["metric:accuracy:min"]["observed"] == 0.99  # the self-reported one, beside it
    assert checks["reference:accuracy"]["source"] == compare["source"]
    # AND champion stayed, its score cached on it (computed when it was validated itself, not again for the candidate)
    assert mlflow_client.get_registered_model(MODEL).aliases.get("champion") == "1"
    holder_tags = mlflow_client.get_model_version(MODEL, "1").tags
    cached = [json.loads(v) for k, v in holder_tags.items() if k.startswith(REFERENCE_TAG_PREFIX)]
    assert [c["scores"]["accuracy"] for c in cached] == [compare["threshold"]]
    assert mlflow_client.get_model_version(MODEL, "2").tags[TAG_STATUS] == "failed"
    assert ReferenceRule(dataset=DATASET, target="label", metrics=["accuracy"])  # the policy file's rule parses
