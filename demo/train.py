"""Training real scikit-learn models and handing them over to the pipeline, three ways.

All three end in the artifact bucket; nobody calls the registry:

1. a plain upload: `mlflow.sklearn.save_model` to a folder, uploaded to `models/<model-name>/<timestamp>/`;
2. MLflow's own layout: `mlflow.sklearn.log_model(..., name="model")` in a run of an experiment whose
   artifact location is `<artifact root>/<experiment name>`, the target model named by the
   `registry.model_name` tag on the logged model (every version of the demo's model arrives this way);
3. run artifacts: a saved model folder logged with `mlflow.log_artifacts(folder, "model")`, the target
   model named by the same tag on the run.

The story told with them is in `demo.life`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from functions.domain.tags import DEFAULT_MODEL_NAME_TAG
from sandbox import Sandbox

PLAIN_MODEL = "iris-classifier"
LOGGED_MODEL = "wine-classifier"
PROVED_MODEL = "wine-proved"
"""Logged like `LOGGED_MODEL`; its policy proves each version (`proof: smoke`)."""
RUN_ARTIFACT_MODEL = "breast-cancer-classifier"
EXPERIMENT = "demo-wine"
RUN_EXPERIMENT = "demo-breast-cancer"
SPLIT_SEED = 7
EXAMPLE_ROWS = 2
TREE_TYPES = ["sklearn.tree._tree.Tree"]
"""What skops is told to trust in the demo's tree models: the trees' node storage (we made the files ourselves)."""


@dataclass(frozen=True)
class Trained:
    """A fitted model, what it is, its test metrics and held-out rows to predict."""

    description: str
    model: Any
    metrics: dict[str, float]
    x_test: Any
    y_test: Any

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]


@dataclass(frozen=True)
class WineRecipe:
    """One version of the demo's model: an estimator on some of a wine's 13 measurements (None: all of them)."""

    description: str
    estimator: str  # logistic regression or decision tree
    features: tuple[str, ...] | None = None
    depth: int | None = None
    example_drops: str | None = None
    """A measurement the saved input example leaves out (a training job's bug): the model passes the metric gate,
    and its proof fails `signature_mismatch` (the example does not match the signature's inputs)."""


def _requirements() -> list[str]:
    # Stated, so MLflow does not spend seconds inferring them in a subprocess.
    return [f"scikit-learn=={version('scikit-learn')}", f"skops=={version('skops')}"]


def _fit(loader, estimator, description: str) -> Trained:  # type: ignore[no-untyped-def]
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    features, labels = loader(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.3, random_state=SPLIT_SEED, stratify=labels
    )
    estimator.fit(x_train, y_train)
    predicted = estimator.predict(x_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1_macro": float(f1_score(y_test, predicted, average="macro")),
    }
    return Trained(description, estimator, metrics, x_test, y_test)


def _signature(trained: Trained):  # type: ignore[no-untyped-def]
    from mlflow.models import infer_signature

    return infer_signature(trained.x_test, trained.model.predict(trained.x_test))


def hand_over_plain_upload(sandbox: Sandbox, workdir: Path) -> tuple[Trained, str]:
    """An iris classifier saved to a folder and uploaded under `models/<name>/<timestamp>/`; returns where."""
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    trained = _fit(load_iris, make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), "logistic regression")
    saved = workdir / PLAIN_MODEL
    mlflow.sklearn.save_model(trained.model, saved, signature=_signature(trained), pip_requirements=_requirements())
    prefix = f"models/{PLAIN_MODEL}/{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}/"
    keys = sandbox.upload_dir(saved, prefix)
    return trained, f"uploaded to s3://{sandbox.bucket}/{prefix} ({len(keys)} files)"


def hand_over_run_artifacts(sandbox: Sandbox, workdir: Path) -> tuple[Trained, str]:
    """A breast-cancer forest logged as a run's `model` artifacts, the run tagged with the model's name."""
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    trained = _fit(
        load_breast_cancer, RandomForestClassifier(n_estimators=25, max_depth=4, random_state=SPLIT_SEED), "forest"
    )
    saved = workdir / RUN_ARTIFACT_MODEL
    mlflow.sklearn.save_model(
        trained.model,
        saved,
        signature=_signature(trained),
        pip_requirements=_requirements(),
        skops_trusted_types=TREE_TYPES,
    )
    experiment_id = mlflow.create_experiment(
        RUN_EXPERIMENT, artifact_location=f"{sandbox.artifact_root}/{RUN_EXPERIMENT}"
    )
    with mlflow.start_run(experiment_id=experiment_id, run_name="breast-cancer-forest") as run:
        mlflow.set_tag(DEFAULT_MODEL_NAME_TAG, RUN_ARTIFACT_MODEL)
        mlflow.log_params({"estimator": "RandomForestClassifier", "n_estimators": 25, "max_depth": 4})
        mlflow.log_metrics(trained.metrics)
        mlflow.log_artifacts(str(saved), "model")
    return trained, f"logged as artifacts of run {run.info.run_id}"


def train_wine(recipe: WineRecipe) -> Trained:
    """Fit one version of the demo's model. Every version takes a wine's 13 measurements, whatever it uses."""
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if recipe.estimator == "logistic regression":
        estimator = LogisticRegression(max_iter=500)
    else:
        estimator = DecisionTreeClassifier(max_depth=recipe.depth, random_state=SPLIT_SEED)
    steps = [StandardScaler(), estimator]
    if recipe.features:
        steps.insert(0, ColumnTransformer([("measurements", "passthrough", list(recipe.features))]))
    return _fit(load_wine, make_pipeline(*steps), recipe.description)


@contextmanager
def _muted(logger_name: str, when: object) -> Iterator[None]:
    """`logger_name` logs errors only inside the block, when `when` is truthy."""
    muted = logging.getLogger(logger_name)
    level = muted.level
    if when:
        muted.setLevel(logging.ERROR)
    try:
        yield
    finally:
        muted.setLevel(level)


def hand_over_logged_model(
    sandbox: Sandbox,
    trained: Trained,
    run_name: str,
    *,
    model_name: str = LOGGED_MODEL,
    example_drops: str | None = None,
) -> str:
    """`log_model` in a run of the wine experiment; the logged model's tag names the registered model.

    Its input example (two held-out wines) is what a proof predicts on; `example_drops` leaves one measurement out
    of it. MLflow still logs such a model (`log_model` only logs a warning that its serving input does not
    validate: mlflow/models/model.py, `Model.log`); the proof is what refuses it."""
    import mlflow
    import mlflow.sklearn

    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment(EXPERIMENT, artifact_location=f"{sandbox.artifact_root}/{EXPERIMENT}")
    )
    example = trained.x_test.head(EXAMPLE_ROWS)
    if example_drops:
        example = example.drop(columns=[example_drops])
    # MLflow's warning that such an input example does not match the signature is muted: the proof's refusal tells it.
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name), _muted("mlflow.models.model", example_drops):
        mlflow.log_params({"estimator": trained.description})
        logged = mlflow.sklearn.log_model(
            trained.model,
            name="model",
            signature=_signature(trained),
            input_example=example,
            pip_requirements=_requirements(),
            tags={DEFAULT_MODEL_NAME_TAG: model_name},
            skops_trusted_types=TREE_TYPES,
        )
        mlflow.log_metrics(trained.metrics, model_id=logged.model_id)
    return f"logged as {logged.model_id} in experiment {EXPERIMENT}"
