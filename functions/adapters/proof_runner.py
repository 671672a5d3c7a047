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


def _report(result: Path, stage: str, *, passed: bool = False, error: str = "") -> None:
    result.write_text(json.dumps({"stage": stage, "passed": passed, "error": error[-20000:]}))


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
    command = f"{activate} && exec python {_quote(__file__)} probe --model {_quote(args.model)} --result {_quote(str(result))}"
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
    probe = commands.add_parser("probe")
    probe.add_argument("--model", required=True)
    probe.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    os.umask(0o077)
    return _build(args) if args.command == "build" else _probe(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
