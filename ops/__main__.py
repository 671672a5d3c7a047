"""`python -m ops`: ask a running pipeline to act, and read what it decided.

Requests go on the pipeline's bus as events (the functions act on them, with the same checks as for
any event); reads go to the MLflow registry. Target a sandbox with `--sandbox <its --json line or a
file>` or a deployed stack with `--stack NAME` (MLFLOW_TRACKING_URI names its registry for reads).

    python -m ops --stack RegistryAutopilot validate churn 7 --by alice
    python -m ops --sandbox sandbox.json verdict churn 7
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid
from collections.abc import Sequence

from ops.target import Target, TargetError, from_sandbox, from_stack

EXIT_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--sandbox", help="a running sandbox: its `replay sandbox --json` line, or a file holding it")
    where.add_argument("--stack", help="a deployed stack's name (its outputs name the bus)")
    parser.add_argument("--region", help="AWS region of the stack (default: your AWS configuration's)")
    commands = parser.add_subparsers(dest="command", required=True)
    from ops.redrive import add_parser as add_redrive_parser  # self-contained: ops/redrive.py

    add_redrive_parser(commands)

    validate = commands.add_parser("validate", help="re-run the validation gate for a version (Validation Requested)")
    validate.add_argument("model")
    validate.add_argument("version")
    validate.add_argument("--by", default=None, help="who asks (default: your user name)")
    validate.set_defaults(run=run_validate)

    verdict = commands.add_parser("verdict", help="show a version's validation verdict from the registry")
    verdict.add_argument("model")
    verdict.add_argument("version")
    verdict.add_argument("--json", action="store_true")
    verdict.set_defaults(run=run_verdict)

    args = parser.parse_args(argv)
    try:
        target = from_sandbox(args.sandbox) if args.sandbox else from_stack(args.stack, region=args.region)
        return args.run(args, target)
    except TargetError as error:
        print(f"ops: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def run_validate(args: argparse.Namespace, target: Target) -> int:
    from functions.adapters.eventbridge import EventBridgePublisher
    from functions.models.events import ValidationRequested
    from functions.routing import EVENT_SOURCE

    request = ValidationRequested(
        model_name=args.model,
        version=args.version,
        requested_by=args.by or getpass.getuser(),
        correlation_id=str(uuid.uuid4()),
    )
    EventBridgePublisher(target.client("events"), bus_name=target.event_bus, source=EVENT_SOURCE).publish(request)
    print(f"Validation Requested for {args.model} v{args.version} (correlation id {request.correlation_id})")
    return 0


def run_verdict(args: argparse.Namespace, target: Target) -> int:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not target.tracking_uri:
        raise TargetError("set MLFLOW_TRACKING_URI to the stack's MLflow server to read verdicts")
    try:
        version = MlflowClient(tracking_uri=target.tracking_uri).get_model_version(args.model, args.version)
    except MlflowException as error:
        raise TargetError(str(error).splitlines()[0]) from None
    verdict = {key: value for key, value in sorted(version.tags.items()) if key.startswith("validation.")}
    if args.json:
        print(json.dumps({"model": args.model, "version": args.version, **verdict}, sort_keys=True))
    elif not verdict:
        print(f"{args.model} v{args.version}: not validated yet")
    else:
        print(f"{args.model} v{args.version}: {verdict.get('validation.status', '?')}")
        for key, value in verdict.items():
            print(f"  {key:<28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
