"""The demo: train real scikit-learn models into a fresh sandbox and watch the pipeline register them.

Three ways a team can hand a model over, all ending in the artifact bucket:

1. a plain upload: `mlflow.sklearn.save_model` to a folder, uploaded to `models/<model-name>/<timestamp>/`;
2. MLflow's own layout: `mlflow.sklearn.log_model(..., name="model")` in a run of an experiment whose
   artifact location is `<artifact root>/<experiment name>`, the target model named by the
   `registry.model_name` tag on the logged model;
3. run artifacts: a saved model folder logged with `mlflow.log_artifacts(folder, "model")`, the target
   model named by the same tag on the run.

Nobody calls the registry: the pipeline registers each model from its S3 events. The demo waits until
the pipeline is quiet, then prints the registry.

    python -m replay demo      (or: python -m demo)
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from functions.models.events import DetailType
from functions.settings import DEFAULT_MODEL_NAME_TAG
from sandbox import Sandbox, SandboxError, format_table, temporary_environment

PLAIN_MODEL = "iris-classifier"
LOGGED_MODEL = "wine-classifier"
RUN_ARTIFACT_MODEL = "breast-cancer-classifier"
EXPERIMENT = "demo-wine"
RUN_EXPERIMENT = "demo-breast-cancer"


def progress(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def _requirements() -> list[str]:
    # Stated, so MLflow does not spend seconds inferring them in a subprocess.
    return [f"scikit-learn=={version('scikit-learn')}", f"skops=={version('skops')}"]


def _fit(loader, estimator):  # type: ignore[no-untyped-def]
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    features, labels = loader(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.3, random_state=7, stratify=labels
    )
    estimator.fit(x_train, y_train)
    predicted = estimator.predict(x_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1_macro": float(f1_score(y_test, predicted, average="macro")),
    }
    return estimator, x_test, metrics


def train_and_hand_over(sandbox: Sandbox, workdir: Path) -> dict[str, dict[str, float]]:
    """Train three models and hand each over one of the three ways; returns their test metrics."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer, load_iris, load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlflow.set_tracking_uri(sandbox.mlflow_tracking_uri)
    scores: dict[str, dict[str, float]] = {}

    # 1. A plain upload: a saved model folder copied under models/<model-name>/<timestamp>/.
    model, x_test, scores[PLAIN_MODEL] = _fit(
        load_iris, make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    )
    saved = workdir / PLAIN_MODEL
    mlflow.sklearn.save_model(
        model, saved, signature=infer_signature(x_test, model.predict(x_test)), pip_requirements=_requirements()
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    keys = sandbox.upload_dir(saved, f"models/{PLAIN_MODEL}/{stamp}/")
    progress(f"uploaded {PLAIN_MODEL} to s3://{sandbox.bucket}/models/{PLAIN_MODEL}/{stamp}/ ({len(keys)} files)")

    # 2. MLflow's own layout: log_model in a run; the logged model's tag names the registered model.
    model, x_test, scores[LOGGED_MODEL] = _fit(
        load_wine, make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    )
    experiment_id = mlflow.create_experiment(EXPERIMENT, artifact_location=f"{sandbox.artifact_root}/{EXPERIMENT}")
    with mlflow.start_run(experiment_id=experiment_id, run_name="wine-logreg"):
        mlflow.log_params({"estimator": "LogisticRegression", "max_iter": 500})
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x_test, model.predict(x_test)),
            pip_requirements=_requirements(),
            tags={DEFAULT_MODEL_NAME_TAG: LOGGED_MODEL},
        )
        mlflow.log_metrics(scores[LOGGED_MODEL], model_id=logged.model_id)
    progress(f"logged {LOGGED_MODEL} as {logged.model_id} in experiment {EXPERIMENT}")

    # 3. Run artifacts: a saved model folder logged as the run's "model" artifacts; the run's tag names it.
    model, x_test, scores[RUN_ARTIFACT_MODEL] = _fit(
        load_breast_cancer, RandomForestClassifier(n_estimators=25, max_depth=4, random_state=7)
    )
    saved = workdir / RUN_ARTIFACT_MODEL
    mlflow.sklearn.save_model(
        model,
        saved,
        signature=infer_signature(x_test, model.predict(x_test)),
        pip_requirements=_requirements(),
        skops_trusted_types=["sklearn.tree._tree.Tree"],  # the forest's trees; we made the file ourselves
    )
    run_experiment_id = mlflow.create_experiment(
        RUN_EXPERIMENT, artifact_location=f"{sandbox.artifact_root}/{RUN_EXPERIMENT}"
    )
    with mlflow.start_run(experiment_id=run_experiment_id, run_name="breast-cancer-forest") as run:
        mlflow.set_tag(DEFAULT_MODEL_NAME_TAG, RUN_ARTIFACT_MODEL)
        mlflow.log_params({"estimator": "RandomForestClassifier", "n_estimators": 25, "max_depth": 4})
        mlflow.log_metrics(scores[RUN_ARTIFACT_MODEL])
        mlflow.log_artifacts(str(saved), "model")
    progress(f"logged {RUN_ARTIFACT_MODEL} as artifacts of run {run.info.run_id}")
    return scores


def registry_rows(sandbox: Sandbox) -> list[list[str]]:
    rows = []
    for model in sandbox.registry_state():
        for item in model["versions"]:
            verdict = item["tags"].get("validation.status", "pending")
            rows.append([model["name"], item["version"], verdict, item["run_id"] or "-", item["source"]])
    return rows


def main(*, timeout: float = 90.0) -> int:
    started = time.monotonic()
    try:
        with Sandbox(progress=progress) as sandbox, tempfile.TemporaryDirectory() as scratch:
            quiet_mlflow = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}  # stdout is for the results
            with temporary_environment({**sandbox.client_environment(), **quiet_mlflow}):
                scores = train_and_hand_over(sandbox, Path(scratch))
                progress("waiting for the pipeline to register them")
                try:
                    sandbox.wait_until_quiet(timeout=timeout)
                except TimeoutError as error:
                    progress(f"warning: {error}")
            rows = registry_rows(sandbox)
            registered = sandbox.observed_events(DetailType.MODEL_VERSION_REGISTERED.value)
            validated = sandbox.observed_events(DetailType.MODEL_VERSION_VALIDATED.value)
            dead = [letter for name in sorted(sandbox.wiring) for letter in sandbox.dlq_messages(name)]
    except SandboxError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2

    print("Test metrics")
    print(
        format_table(
            ["model", "accuracy", "f1_macro"],
            [[n, f"{s['accuracy']:.3f}", f"{s['f1_macro']:.3f}"] for n, s in sorted(scores.items())],
        )
    )
    print()
    print("Model registry (filled and validated by the pipeline, not by the training code)")
    print(format_table(["model", "version", "validation", "run id", "source"], rows) if rows else "(empty)")
    print()
    print(
        f"{len(registered)} '{DetailType.MODEL_VERSION_REGISTERED.value}' and {len(validated)} "
        f"'{DetailType.MODEL_VERSION_VALIDATED.value}' events emitted, {len(dead)} dead letters"
    )
    for letter in dead:
        print(f"  dead letter on {letter.route}: {letter.reason or 'max receive count exceeded'} {letter.error or ''}")
    progress(f"done in {time.monotonic() - started:.0f} s")
    expected = {PLAIN_MODEL, LOGGED_MODEL, RUN_ARTIFACT_MODEL}
    return 0 if expected <= {row[0] for row in rows} and not dead else 1


if __name__ == "__main__":
    sys.exit(main())
