"""`python -m ops`: ask a running pipeline to act, and read what it decided.

Requests go on the pipeline's bus as events (the functions act on them, with the same checks as for
any event); reads go to the MLflow registry. Target a sandbox with `--sandbox <its --json line or a
file>` or a deployed stack with `--stack NAME` (MLFLOW_TRACKING_URI names its registry for reads).

    python -m ops --stack RegistryAutopilot validate churn 7 --by alice
    python -m ops --stack RegistryAutopilot promote churn 7 --alias champion --approver alice
    python -m ops --stack RegistryAutopilot promote churn 7 --to prod --approver alice   (a ladder: ops/ladder.py)
    python -m ops --sandbox sandbox.json ladder churn
    python -m ops --stack RegistryAutopilot rollback churn --alias champion --by bob [--to 5]
    python -m ops --sandbox sandbox.json history churn --alias champion
    python -m ops --sandbox sandbox.json verdict churn 7
    python -m ops --stack RegistryAutopilot --workspace team-a promote churn 7   (a model in an MLflow workspace)
    python -m ops --stack RegistryAutopilot redrive register --dry-run
    python -m ops --stack RegistryAutopilot backfill --dry-run
    python -m ops preflight --bucket ml-artifacts [--key-arn ARN]   (or --stack NAME: ops/preflight.py)
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

from functions.domain.tags import VALIDATION_TAG_PREFIX
from functions.models.events import workspace_name_problem
from functions.project import command_name
from ops.target import Target, TargetError, from_sandbox, from_stack

if TYPE_CHECKING:
    from functions.domain.ports import ModelRegistry, VersionInfo

T = TypeVar("T")

EXIT_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["preflight"]:  # takes --stack or --bucket itself: an existing bucket may have no stack yet
        from ops.preflight import main as preflight

        return preflight(argv[1:])
    parser = argparse.ArgumentParser(prog=command_name("ops"), description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--sandbox", help="a running sandbox: its `python -m sandbox --json` line, or a file holding it")
    where.add_argument("--stack", help="a deployed stack's name (its outputs name the bus)")
    parser.add_argument("--region", help="AWS region of the stack (default: your AWS configuration's)")
    parser.add_argument(
        "--workspace",
        help="the MLflow workspace the model is in (a server with workspaces on): requests name it, reads are made "
        "in it (default: the client's workspace; backfill takes each key's own)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    from ops.redrive import add_parser as add_redrive_parser  # self-contained: ops/redrive.py

    add_redrive_parser(commands)
    from ops.backfill import add_parser as add_backfill_parser  # self-contained: ops/backfill.py

    add_backfill_parser(commands)
    from ops.ladder import add_parser as add_ladder_parser  # self-contained: ops/ladder.py

    add_ladder_parser(commands)

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

    promote = commands.add_parser("promote", help="move an alias to a version that passed (Promotion Requested)")
    promote.add_argument("model")
    promote.add_argument("version")
    promote.add_argument("--alias", default="champion")
    promote.add_argument("--approver", default=None, help="who approves (default: your user name)")
    promote.add_argument("--to", default=None, help="an environment of the model's promotion ladder (not --alias)")
    from ops.ladder import add_policies_argument

    add_policies_argument(promote)
    promote.set_defaults(run=run_promote)

    rollback = commands.add_parser("rollback", help="move an alias back to its previous holder (Rollback Requested)")
    rollback.add_argument("model")
    rollback.add_argument("--alias", default="champion")
    rollback.add_argument(
        "--to", dest="version", default=None, help="a version that passed (default: the previous holder)"
    )
    rollback.add_argument("--by", default=None, help="who asks (default: your user name)")
    rollback.set_defaults(run=run_rollback)

    history = commands.add_parser("history", help="show an alias's moves (newest last)")
    history.add_argument("model")
    history.add_argument("--alias", default="champion")
    history.add_argument("--json", action="store_true")
    history.set_defaults(run=run_history)

    args = parser.parse_args(argv)
    problem = workspace_name_problem(args.workspace) if args.workspace else None
    if problem:
        print(f"ops: error: --workspace: {problem}", file=sys.stderr)
        return EXIT_ERROR
    try:
        target = from_sandbox(args.sandbox) if args.sandbox else from_stack(args.stack, region=args.region)
        return args.run(args, target)
    except TargetError as error:
        print(f"ops: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def publish(target: Target, request: BaseModel) -> None:
    from functions.adapters.eventbridge import EventBridgePublisher
    from functions.routing import EVENT_SOURCE

    EventBridgePublisher(target.client("events"), bus_name=target.event_bus, source=EVENT_SOURCE).publish(request)


def run_validate(args: argparse.Namespace, target: Target) -> int:
    from functions.models.events import ValidationRequested

    request = ValidationRequested(
        model_name=args.model,
        version=args.version,
        requested_by=args.by or getpass.getuser(),
        correlation_id=str(uuid.uuid4()),
        workspace=args.workspace,
    )
    publish(target, request)
    print(f"Validation Requested for {args.model} v{args.version} (correlation id {request.correlation_id})")
    return 0


def run_promote(args: argparse.Namespace, target: Target) -> int:
    from functions.models.events import PromotionRequested

    if args.to:
        from ops.ladder import run_promote_to

        return run_promote_to(args, target)
    refusal = _not_passed(target, args.model, args.version, "promote", args.workspace)
    if refusal:
        print(f"ops: refused: {refusal}", file=sys.stderr)
        return EXIT_ERROR
    request = PromotionRequested(
        model_name=args.model,
        version=args.version,
        alias=args.alias,
        approver=args.approver or getpass.getuser(),
        correlation_id=str(uuid.uuid4()),
        workspace=args.workspace,
    )
    publish(target, request)
    print(
        f"Promotion Requested: {args.model}@{args.alias} -> v{args.version} (correlation id {request.correlation_id})"
    )
    return 0


def run_rollback(args: argparse.Namespace, target: Target) -> int:
    from functions.models.events import RollbackRequested

    if args.version:
        refusal = _not_passed(target, args.model, args.version, "roll back to", args.workspace)
        if refusal:
            print(f"ops: refused: {refusal}", file=sys.stderr)
            return EXIT_ERROR
    request = RollbackRequested(
        model_name=args.model,
        alias=args.alias,
        version=args.version,
        requested_by=args.by or getpass.getuser(),
        correlation_id=str(uuid.uuid4()),
        workspace=args.workspace,
    )
    publish(target, request)
    where = f"v{args.version}" if args.version else "its previous holder"
    print(f"Rollback Requested: {args.model}@{args.alias} -> {where} (correlation id {request.correlation_id})")
    return 0


def run_history(args: argparse.Namespace, target: Target) -> int:
    from dataclasses import asdict

    from functions.domain.promotion import parse_history
    from functions.domain.tags import LADDER_HISTORY_TAG, history_tag

    model = _read(target, lambda registry: registry.get_model(args.model), args.workspace)
    if model is None:
        raise TargetError(f"the registry has no model named {args.model!r}")
    history = parse_history(model.tags.get(history_tag(args.alias)))
    promoted = parse_history(model.tags.get(LADDER_HISTORY_TAG))
    if args.json:
        print(json.dumps([asdict(entry) for entry in history]))
        return 0
    if not history:
        print(f"{args.model}@{args.alias}: no moves recorded")
    for entry in history:
        print(
            f"{entry.at}  v{entry.previous or '-'} -> v{entry.version}  by {entry.actor}: {entry.reason}"
            f"  (correlation id {entry.correlation_id})"
        )
    if promoted:
        print(f"{args.model}: promoted up its ladder")
    for entry in promoted:
        print(f"{entry.at}  v{entry.version} {entry.reason}  by {entry.actor}  (correlation id {entry.correlation_id})")
    return 0


def _read(target: Target, read: Callable[[ModelRegistry], T], workspace: str | None = None) -> T:
    """One read through the registry adapter, in `workspace`; a registry that cannot answer is a `TargetError`."""
    from functions.adapters.registry_factory import open_registry
    from functions.domain.errors import PipelineError

    if not target.tracking_uri:
        raise TargetError("set MLFLOW_TRACKING_URI to the stack's MLflow server to read the registry")
    try:
        registry = open_registry(target.tracking_uri, os.environ.get("MLFLOW_REGISTRY_URI", ""))
        with registry.in_workspace(workspace):
            return read(registry)
    except PipelineError as error:
        raise TargetError(error.message) from None


def _version(target: Target, model: str, version: str, workspace: str | None = None) -> VersionInfo:
    found = _read(target, lambda registry: registry.get_version(model, version), workspace)
    if found is None:
        raise TargetError(f"the registry has no version {version} of {model!r}")
    return found


def _not_passed(target: Target, model: str, version: str, verb: str, workspace: str | None) -> str | None:
    """Why the functions would refuse this request (they check again): None when the version passed."""
    from functions.domain.aliases import not_passed

    return not_passed(_version(target, model, version, workspace), verb)


def run_verdict(args: argparse.Namespace, target: Target) -> int:
    from functions.domain.validation import verdict_record

    tags = _version(target, args.model, args.version, args.workspace).tags
    verdict = {key: value for key, value in sorted(tags.items()) if key.startswith(VALIDATION_TAG_PREFIX)}
    if args.json:
        print(json.dumps({"model": args.model, "version": args.version, **verdict}, sort_keys=True))
    elif not verdict:
        print(f"{args.model} v{args.version}: not validated yet")
    else:
        print(f"{args.model} v{args.version}: {verdict.get('validation.status', '?')}")
        for key, value in verdict_record(tags).items():
            print(f"  {key:<16} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
