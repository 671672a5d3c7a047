"""The sandbox as a command (`python -m sandbox`, also `python -m replay sandbox`): its options, the policies check,
the friendly description of a running sandbox, and running it until Ctrl+C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from functions.domain.policy import PolicyError, load_policies
from functions.domain.tags import DEFAULT_MODEL_NAME_TAG
from functions.routing import DEFAULT_ARTIFACT_ROOT_PREFIX
from sandbox.core import Sandbox
from sandbox.processes import SandboxError

SANDBOX_PROOF_TIMEOUT_SECONDS = 30
"""Half the validate route's 60 s timeout (which the sandbox's worker applies as Lambda would): the other half keeps
MLflow's per-request timeout at the route's usual 3 s (functions.settings.function_environment)."""


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of the sandbox command."""
    parser.add_argument("--json", action="store_true", help="print one JSON line describing the sandbox when ready")
    parser.add_argument("--workdir", type=Path, help="keep the MLflow database and logs here (default: a temp dir)")
    parser.add_argument("--mlflow-port", type=int, help="MLflow server port (default: a free port)")
    parser.add_argument("--aws-port", type=int, help="moto server port (default: a free port)")
    parser.add_argument("--artifact-root-prefix", default=DEFAULT_ARTIFACT_ROOT_PREFIX)
    add_policies_option(parser)


def add_policies_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        type=Path,
        help="validation policies to use instead of the repository's policies/ (try a change before deploying it)",
    )


def function_settings(policies: Path | None) -> dict[str, Any]:
    """Settings for the sandbox's functions; a policy folder is checked first, as `cdk synth` would.

    Policies with `proof: smoke` are proved with the sandbox's own packages (`local`: no environment is built, nothing
    is downloaded), within the validate route's timeout."""
    proof = {"proof": "local", "proof_timeout_seconds": SANDBOX_PROOF_TIMEOUT_SECONDS}
    if not policies:
        return proof
    try:
        load_policies(policies)
    except PolicyError as error:
        raise SandboxError(f"the policies in {policies} are not valid: {error}") from None
    return {"policies_dir": str(policies.resolve()), **proof}


def run(args: argparse.Namespace, *, progress: Callable[[str], None]) -> int:
    """Start the sandbox, say how to use it, and keep it running until Ctrl+C or SIGTERM (then stop it)."""
    sandbox = Sandbox(
        workdir=args.workdir,
        mlflow_port=args.mlflow_port,
        aws_port=args.aws_port,
        artifact_root_prefix=args.artifact_root_prefix,
        function_settings=function_settings(args.policies),
        progress=progress,
    )
    try:
        sandbox.start()
        if args.json:
            print(json.dumps(sandbox.info(), sort_keys=True), flush=True)
        else:
            print(describe(sandbox), flush=True)
        while True:
            time.sleep(0.5)
            sandbox.check_running()
    except KeyboardInterrupt:
        progress("stopping")
        return 0
    finally:
        sandbox.stop()


def describe(sandbox: Sandbox) -> str:
    """The friendly block: what to export, where things are, and how to send a model through."""
    exports = "\n".join(f"  export {name}={value}" for name, value in sandbox.client_environment().items())
    queues = "\n".join(
        f"  {name:<10} {wiring.queue_url}\n  {'':<10} dead letters: {wiring.dead_letter_queue_url}"
        for name, wiring in sorted(sandbox.wiring.items())
    )
    return f"""\
Sandbox ready: moto {sandbox.aws_endpoint_url}, MLflow {sandbox.mlflow_tracking_uri}. Ctrl+C stops it.

Point your shell (or notebook) at it:
{exports}

Artifact bucket  s3://{sandbox.bucket}   (MLflow artifact root {sandbox.artifact_root})
Project bus      {sandbox.event_bus}
Queues
{queues}
Logs             {sandbox.logs_dir}

Log a model the MLflow way (registered as "my-model" by its tag):
  import mlflow
  experiment_id = mlflow.create_experiment("my-experiment", artifact_location="{sandbox.artifact_root}/my-experiment")
  with mlflow.start_run(experiment_id=experiment_id):
      mlflow.sklearn.log_model(model, name="model", tags={{"{DEFAULT_MODEL_NAME_TAG}": "my-model"}})

or upload a saved model (mlflow.sklearn.save_model(model, "my-model-dir")) as it is:
  aws s3 cp --recursive my-model-dir s3://{sandbox.bucket}/models/my-model/1/
"""
