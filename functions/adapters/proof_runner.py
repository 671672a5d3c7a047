"""The process a model proof runs in (run as a script: `python proof_runner.py build|probe ...`).

It imports nothing of the project, only MLflow and the standard library, because its `probe` half runs inside the
model's own environment, where only the model's requirements are installed.

- `build` (the function's Python, with mlflow-skinny): builds the environment the model declares with MLflow's own
  machinery (`mlflow.utils.virtualenv._get_or_create_virtualenv`, what `mlflow.models.predict` and
  `mlflow models serve` use; environments are cached under `--env-root` by the hash of the model's Python and
  requirements), then runs `probe` in it.
- `probe` (the model's Python): loads the model with its flavor (`mlflow.pyfunc.load_model`), checks the saved
  input example against the signature's inputs (`mlflow.models.validate_schema`), predicts, and checks the output
  against the signature's outputs.

- `score` (the model's Python; `build --then score` in its environment): loads the model, reads a reference dataset
  (`--spec`, a JSON file: path, format, target, metrics, max_rows) with pandas, predicts on every column but the
  target and computes the metrics, with scikit-learn's `sklearn.metrics` where the environment has it, else numpy.
  Its last write is `{"stage": "score", "passed": true, "scores": {...}, "rows": n, "library": "..."}`; a bad
  dataset or bad predictions end with a `reason` (the names of `functions.domain.reference`).

Before each stage it writes `{"stage", "passed": false}` to the result file, so a process killed mid-stage (timeout,
a signal, a file-size limit) leaves the stage it died in; the last write is `{"stage": "output", "passed": true}`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess  # nosec B404: runs the model's own environment's interpreter on this file
import sys
import traceback
from pathlib import Path
from typing import Any


def _report(result: Path, stage: str, *, passed: bool = False, error: str = "", **extra: Any) -> None:
    result.write_text(json.dumps({"stage": stage, "passed": passed, "error": error[-20000:], **extra}))


class _Refused(Exception):
    """A reference dataset or a model's predictions that cannot be scored: a reason and a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _build(args: argparse.Namespace) -> int:
    result = Path(args.result)
    _report(result, "environment")
    # Where the caller found MLflow (on Lambda a layer's /opt/python, which the runtime puts on sys.path itself, not
    # through PYTHONPATH): for this half only, never inherited by the probe in the model's own environment.
    sys.path[:0] = [entry for entry in (args.import_path or "").split(os.pathsep) if entry]
    try:
        from mlflow.utils.virtualenv import _get_or_create_virtualenv

        activate = _get_or_create_virtualenv(
            args.model, env_root_dir=args.env_root, capture_output=True, env_manager=args.env_manager
        )
    except BaseException:  # noqa: BLE001 - whatever fails here is the environment's failure, reported as such
        _report(result, "environment", error=traceback.format_exc())
        return 1
    then = f"{args.then} --model {_quote(args.model)} --result {_quote(str(result))}"
    if args.then == "score":
        then += f" --spec {_quote(args.spec)}"
    command = f"{activate} && exec python {_quote(__file__)} {then}"
    completed = subprocess.run(["bash", "-c", command], check=False)  # nosec B603 B607: fixed command, quoted paths
    return completed.returncode


def _probe(args: argparse.Namespace) -> int:
    result = Path(args.result)
    stage = "environment"
    try:
        import mlflow.models
        import mlflow.pyfunc

        stage = "load"
        _report(result, stage)
        model = mlflow.pyfunc.load_model(args.model)
        mlmodel = mlflow.models.Model.load(args.model)
        stage = "input"
        _report(result, stage)
        example: Any = mlmodel.load_input_example(args.model)
        if example is None:
            raise ValueError("the MLmodel names no saved input example")
        params = mlmodel.load_input_example_params(args.model)
        signature = mlmodel.signature
        if signature is not None and signature.inputs is not None:
            mlflow.models.validate_schema(example, signature.inputs)
        stage = "predict"
        _report(result, stage)
        output = model.predict(example, params=params) if params else model.predict(example)
        stage = "output"
        _report(result, stage)
        if signature is not None and signature.outputs is not None:
            mlflow.models.validate_schema(output, signature.outputs)
    except BaseException:  # noqa: BLE001 - the model's code may raise anything, SystemExit included
        _report(result, stage, error=traceback.format_exc())
        return 1
    _report(result, "output", passed=True)
    return 0


def _score(args: argparse.Namespace) -> int:
    result = Path(args.result)
    spec = json.loads(Path(args.spec).read_text())
    stage = "environment"
    try:
        import mlflow.pyfunc
        import numpy as np

        stage = "load"
        _report(result, stage)
        model = mlflow.pyfunc.load_model(args.model)
        stage = "dataset"
        _report(result, stage)
        frame = _read_dataset(spec)
        target = spec["target"]
        stage = "predict"
        _report(result, stage)
        predictions = model.predict(frame.drop(columns=[target]))
        stage = "score"
        _report(result, stage)
        truth = frame[target].to_numpy()
        predicted = _predictions(np, predictions, len(truth))
        library, scores = _metrics(np, spec["metrics"], truth, predicted)
    except _Refused as refused:
        _report(result, stage, error=str(refused), reason=refused.reason)
        return 1
    except BaseException:  # noqa: BLE001 - the model's code may raise anything, SystemExit included
        _report(result, stage, error=traceback.format_exc())
        return 1
    _report(result, "score", passed=True, scores=scores, rows=len(truth), library=library)
    return 0


def _read_dataset(spec: dict[str, Any]) -> Any:
    import pandas as pd  # type: ignore[import-untyped]

    path, target, cap = spec["path"], spec["target"], int(spec["max_rows"])
    try:
        if spec["format"] == "parquet":
            frame = pd.read_parquet(path)  # pyarrow or fastparquet: the model's environment must have one
        else:
            frame = pd.read_csv(path, nrows=cap + 1)  # one more than the cap tells "over it" without reading it all
    except ImportError as error:
        raise _Refused("dataset_unreadable", f"the model's environment cannot read Parquet: {error}") from error
    except Exception as error:  # pandas raises many types for a damaged file
        raise _Refused("dataset_unreadable", f"not a readable {spec['format']} file: {error}") from error
    if target not in frame.columns:
        columns = ", ".join(map(str, list(frame.columns)[:20]))
        raise _Refused("target_missing", f"the dataset has no column {target!r} (columns: {columns})")
    if len(frame) == 0:
        raise _Refused("dataset_empty", "the dataset has no rows")
    if len(frame) > cap:
        raise _Refused("dataset_too_large", f"the dataset has more than the policy's max_rows of {cap} rows")
    if frame[target].isna().any():
        raise _Refused("dataset_unreadable", f"the target column {target!r} has missing values")
    return frame


def _predictions(np: Any, predictions: Any, rows: int) -> Any:
    values = np.asarray(getattr(predictions, "to_numpy", lambda: predictions)())
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or len(values) != rows:
        raise _Refused("predictions_invalid", f"predictions of shape {values.shape} for {rows} rows")
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        raise _Refused("predictions_invalid", f"{int((~np.isfinite(values)).sum())} predictions are NaN or infinite")
    if values.dtype.kind == "O" and any(value is None for value in values):
        raise _Refused("predictions_invalid", "some predictions are None")
    return values


def _metrics(np: Any, names: list[str], truth: Any, predicted: Any) -> tuple[str, dict[str, float]]:
    """The metrics by name, with scikit-learn where the model's environment has it, else numpy."""
    regression = [name for name in names if name != "accuracy"]
    if regression and (truth.dtype.kind not in "iuf" or predicted.dtype.kind not in "iufb"):
        raise _Refused("predictions_invalid", f"{', '.join(regression)} need numbers: {predicted.dtype} predictions")
    try:
        import sklearn  # type: ignore[import-untyped]
        from sklearn import metrics

        library = f"scikit-learn {sklearn.__version__}"
        functions = {
            "accuracy": metrics.accuracy_score,
            "rmse": lambda t, p: float(np.sqrt(metrics.mean_squared_error(t, p))),
            "mae": metrics.mean_absolute_error,
            "r2": metrics.r2_score,
        }
    except ImportError:
        library = f"numpy {np.__version__}"
        functions = {
            "accuracy": lambda t, p: np.mean(t == p),
            "rmse": lambda t, p: np.sqrt(np.mean((t - p) ** 2)),
            "mae": lambda t, p: np.mean(np.abs(t - p)),
            "r2": lambda t, p: 1 - np.sum((t - p) ** 2) / np.sum((t - np.mean(t)) ** 2),
        }
    try:
        scores = {name: float(functions[name](truth, predicted)) for name in names}
    except (TypeError, ValueError) as error:  # labels of another type than the target's, say
        raise _Refused(
            "predictions_invalid", f"the predictions cannot be scored against the target: {error}"
        ) from error
    bad = [name for name, value in scores.items() if not np.isfinite(value)]
    if bad:
        raise _Refused("predictions_invalid", f"{', '.join(bad)} is not a finite number on these rows")
    return library, scores


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="proof_runner")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build")
    build.add_argument("--model", required=True)
    build.add_argument("--result", required=True)
    build.add_argument("--env-root", required=True)
    build.add_argument("--env-manager", choices=("uv", "virtualenv"), required=True)
    build.add_argument("--import-path", default="")
    build.add_argument("--then", choices=("probe", "score"), default="probe")
    build.add_argument("--spec", default="")
    probe = commands.add_parser("probe")
    probe.add_argument("--model", required=True)
    probe.add_argument("--result", required=True)
    score = commands.add_parser("score")
    score.add_argument("--model", required=True)
    score.add_argument("--result", required=True)
    score.add_argument("--spec", required=True)
    args = parser.parse_args(argv)
    os.umask(0o077)
    return {"build": _build, "probe": _probe, "score": _score}[args.command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
