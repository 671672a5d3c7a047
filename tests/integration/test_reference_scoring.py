"""Scoring a model on reference data in a process of its own (`ModelProver.score`, `proof_runner.py score`), on real
scikit-learn and custom pyfunc models saved by MLflow and datasets written to a temp dir.

Path: env_manager="local" (the dev venv's interpreter and packages, which have scikit-learn and pyarrow, in a process
of its own); nothing is built or downloaded. The bad datasets and bad predictions each end as a check with its reason.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel
from sklearn.linear_model import LinearRegression, LogisticRegression

from functions.adapters.model_proof import ModelProver, ProofSettings
from functions.domain.policy import Check
from functions.domain.reference import (
    DATASET_EMPTY,
    DATASET_TOO_LARGE,
    DATASET_UNREADABLE,
    PREDICTIONS_INVALID,
    TARGET_MISSING,
    ReferenceScore,
    ScoreSpec,
)

pytestmark = pytest.mark.slow
X = np.random.RandomState(1).rand(40, 3)
Y = (X[:, 0] > 0.5).astype(int)
FRAME = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=Y)
CLASSIFY = ScoreSpec("csv", "label", ("accuracy",), 1000)
PROVER = ModelProver(ProofSettings(env_manager="local", timeout_seconds=120))
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _Broken(PythonModel):
    """Predicts NaN for every row, or one row fewer than it was given."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        import numpy

        rows = len(model_input)
        return numpy.full(rows, numpy.nan) if self.mode == "nan" else numpy.zeros(rows - 1)


@pytest.fixture(autouse=True)
def sandbox_env() -> None:
    """These tests need no sandbox: they score model directories on disk."""


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "classifier"
    model = LogisticRegression().fit(FRAME[["a", "b", "c"]], Y)
    mlflow.sklearn.save_model(model, path, pip_requirements=["scikit-learn"])
    return path


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_a_classifier_is_scored_on_every_column_but_the_target_with_scikit_learn(classifier, tmp_path) -> None:
    # GIVEN a classifier and a CSV of its features and label
    # WHEN scored
    result = PROVER.score(classifier, _csv(tmp_path, FRAME), CLASSIFY)
    # THEN its accuracy on all 40 rows, computed with scikit-learn in the proof's process
    assert isinstance(result, ReferenceScore), result
    expected = float(np.mean(LogisticRegression().fit(FRAME[["a", "b", "c"]], Y).predict(FRAME[["a", "b", "c"]]) == Y))
    assert result.scores["accuracy"] == pytest.approx(expected)
    assert (result.rows, result.library.split()[0]) == (40, "scikit-learn")


def test_a_regressor_gets_rmse_mae_and_r2_from_a_parquet_file(tmp_path) -> None:
    # GIVEN a linear regressor and a Parquet dataset (the dev venv has pyarrow)
    target = X @ np.array([1.0, 2.0, 3.0])
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=target)
    path = tmp_path / "regressor"
    mlflow.sklearn.save_model(LinearRegression().fit(frame[["a", "b", "c"]], target), path)
    frame.to_parquet(tmp_path / "data.parquet")
    # WHEN scored
    result = PROVER.score(path, tmp_path / "data.parquet", ScoreSpec("parquet", "y", ("rmse", "mae", "r2"), 1000))
    # THEN a perfect fit's numbers
    assert isinstance(result, ReferenceScore), result
    assert result.scores["rmse"] == pytest.approx(0, abs=1e-9)
    assert result.scores["mae"] == pytest.approx(0, abs=1e-9)
    assert result.scores["r2"] == pytest.approx(1)


@pytest.mark.parametrize(
    ("frame", "spec", "reason"),
    [
        (FRAME.drop(columns=["label"]), CLASSIFY, TARGET_MISSING),
        (FRAME.iloc[:0], CLASSIFY, DATASET_EMPTY),
        (FRAME, ScoreSpec("csv", "label", ("accuracy",), 39), DATASET_TOO_LARGE),
        (FRAME, ScoreSpec("parquet", "label", ("accuracy",), 1000), DATASET_UNREADABLE),  # a CSV named Parquet
        (FRAME.assign(label=["yes"] * 40), ScoreSpec("csv", "label", ("rmse",), 1000), PREDICTIONS_INVALID),
    ],
)
def test_a_dataset_that_cannot_be_scored_is_a_check_with_its_reason(classifier, tmp_path, frame, spec, reason) -> None:
    # GIVEN a dataset wrong in one way
    # WHEN the classifier is scored on it
    result = PROVER.score(classifier, _csv(tmp_path, frame), spec)
    # THEN a failed check with the reason, never an exception
    assert isinstance(result, Check)
    assert not result.passed
    assert result.observed == reason, result.message


@pytest.mark.parametrize("mode", ["nan", "short"])
def test_predictions_that_are_nan_or_of_the_wrong_length_are_predictions_invalid(tmp_path, mode: str) -> None:
    # GIVEN a model that predicts NaN, or one row fewer
    path = tmp_path / "broken"
    mlflow.pyfunc.save_model(path, python_model=_Broken(mode), pip_requirements=["numpy"])
    # WHEN scored
    result = PROVER.score(path, _csv(tmp_path, FRAME), CLASSIFY)
    # THEN predictions_invalid, saying what was wrong
    assert isinstance(result, Check)
    assert result.observed == PREDICTIONS_INVALID
    assert ("NaN" if mode == "nan" else "shape") in result.message
