"""Rebuild `events/seed/`: the objects the sample events name, as the artifact bucket would hold them.

Real scikit-learn models written by MLflow itself (a plain `save_model` folder, a model logged with `log_model`, a
saved folder logged as run artifacts), an upload whose weights never arrived, and two hostile MLmodel files. The
logged model's id and the run's id are chosen by MLflow, so the script also writes them into the keys of
`mlflow-logged-model.json` and `mlflow-run-artifacts.json`. Everything stays small (a logistic regression on the
iris data set is about a kilobyte).

    .venv/bin/python events/make_seed.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

EVENTS = Path(__file__).resolve().parent
SEED = EVENTS / "seed"
RECORDED_BUCKET = "registryautopilot-artifactsbucket88671897-1q2w3e4r5t6y"
"""The bucket the sample events were recorded in (a deployed stack's); `replay local` rewrites it to the sandbox's."""

YAML_BOMB = """\
# A "billion laughs": nine levels of aliases expand to 9^9 strings in a parser that follows them.
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
flavors:
  python_function: {loader_module: mlflow.sklearn, data: *i}
"""

BROKEN_MLMODEL = """\
flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: [model.pkl
"""


def main() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(features, labels)
    if SEED.exists():
        shutil.rmtree(SEED)

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        saved = work / "saved"
        mlflow.sklearn.save_model(model, saved, pip_requirements=["scikit-learn"])
        for key_prefix in ("models/churn/2026-11-20", "models/pricing/2026-11-21"):
            shutil.copytree(saved, SEED / key_prefix)
        # The MLmodel of an upload whose weights never arrived.
        (SEED / "models/forecast/2026-01-05").mkdir(parents=True)
        shutil.copy(saved / "MLmodel", SEED / "models/forecast/2026-01-05/MLmodel")

        mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
        logged_experiment = mlflow.create_experiment("fraud", artifact_location=(work / "fraud").as_uri())
        with mlflow.start_run(experiment_id=logged_experiment):
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        logged_key = f"mlflow/fraud/models/{info.model_id}/artifacts"
        shutil.copytree(work / "fraud" / "models" / info.model_id / "artifacts", SEED / logged_key)
        # MLflow wrote the artifact location it logged to; say the bucket's, as a run on AWS would.
        mlmodel = SEED / logged_key / "MLmodel"
        location = f"s3://{RECORDED_BUCKET}/mlflow/fraud"
        mlmodel.write_text(mlmodel.read_text().replace((work / "fraud").as_uri(), location))

        run_experiment = mlflow.create_experiment("recsys", artifact_location=(work / "recsys").as_uri())
        with mlflow.start_run(experiment_id=run_experiment) as run:
            mlflow.log_artifacts(str(saved), artifact_path="model")
        run_key = f"mlflow/recsys/{run.info.run_id}/artifacts/model"
        shutil.copytree(work / "recsys" / run.info.run_id / "artifacts" / "model", SEED / run_key)

    (SEED / "models/broken/1").mkdir(parents=True)
    (SEED / "models/broken/1/MLmodel").write_text(BROKEN_MLMODEL)
    (SEED / "models/bomb/1").mkdir(parents=True)
    (SEED / "models/bomb/1/MLmodel").write_text(YAML_BOMB)

    _point_event_at("mlflow-logged-model.json", r"mlflow/fraud/models/m-[0-9a-f]{32}/artifacts", logged_key)
    _point_event_at("mlflow-run-artifacts.json", r"mlflow/recsys/[0-9a-f]{32}/artifacts/model", run_key)
    size = sum(path.stat().st_size for path in SEED.rglob("*") if path.is_file())
    print(f"wrote {SEED} ({size} bytes)")


def _point_event_at(file_name: str, pattern: str, model_dir: str) -> None:
    path = EVENTS / file_name
    event = json.loads(path.read_text())
    obj = event["detail"]["object"]
    obj["key"] = re.sub(pattern, model_dir, obj["key"])
    path.write_text(json.dumps(event, indent=2) + "\n")


if __name__ == "__main__":
    main()
