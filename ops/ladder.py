"""`python -m ops promote <model> <version> --to <env>` and `python -m ops ladder <model>`: a promotion ladder.

`promote --to` checks the promotion as the aliases function will (`functions.domain.ladder.check_promotion`, from
the registry and the policies) and refuses it up front with the reason; otherwise it puts an `Environment Promotion
Requested` event on the bus, and the aliases function copies the version forward and moves that rung's aliases.
`ladder` reads the registry: which version holds each rung's aliases, where it came from, and what the version
standing below each rung waits for before it may enter it.

The policies are read from `--policies` (default: the repository's `policies/`, the folder a deployment ships).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.target import Target, TargetError

if TYPE_CHECKING:
    from functions.domain.ladder import Position
    from functions.domain.policy import PolicySet
    from functions.domain.ports import ModelRegistry

EXIT_ERROR = 2


def add_policies_argument(parser: argparse.ArgumentParser) -> None:
    from functions.settings import DEFAULT_POLICIES_DIR

    parser.add_argument(
        "--policies", type=Path, default=DEFAULT_POLICIES_DIR, help="the policies folder (default: policies/)"
    )


def add_parser(commands: Any) -> None:
    ladder = commands.add_parser("ladder", help="show which version stands at each rung of a model's promotion ladder")
    ladder.add_argument("model", help="any model of the ladder")
    ladder.add_argument("--json", action="store_true")
    add_policies_argument(ladder)
    ladder.set_defaults(run=run_ladder)


def _policies(folder: Path) -> PolicySet:
    from functions.domain.policy import PolicyError, load_policies

    try:
        return load_policies(folder)
    except PolicyError as error:
        raise TargetError(str(error)) from None


def _position(policies: PolicySet, model: str) -> Position:
    from functions.domain.ladder import locate

    position = locate(policies, model)
    if position is None:
        raise TargetError(
            f"{model} is on no promotion ladder in these policies (a policy's `ladder:` names its models)"
        )
    return position


def run_promote_to(args: argparse.Namespace, target: Target) -> int:
    """`promote <model> <version> --to <env> [--approver NAME]`."""
    from functions.domain.errors import Rejected
    from functions.domain.ladder import check_promotion
    from functions.models.events import EnvironmentPromotionRequested
    from ops.__main__ import _read as read_registry
    from ops.__main__ import publish

    policies = _policies(args.policies)

    def check(registry: ModelRegistry) -> str | None:
        try:
            check_promotion(
                policies,
                registry,
                args.model,
                args.version,
                args.to,
                approver=args.approver,
                now=datetime.now(UTC),
                registry_at=_other_registry,
            )
        except Rejected as refusal:
            return refusal.message
        return None

    refusal = read_registry(target, check, args.workspace)
    if refusal:
        print(f"ops: refused: {refusal}", file=sys.stderr)
        return EXIT_ERROR
    request = EnvironmentPromotionRequested(
        model_name=args.model,
        version=args.version,
        environment=args.to,
        requested_by=getpass.getuser(),
        approver=args.approver,
        correlation_id=str(uuid.uuid4()),
        workspace=args.workspace,
    )
    publish(target, request)
    print(
        f"Environment Promotion Requested: {args.model} v{args.version} -> {args.to} "
        f"(correlation id {request.correlation_id})"
    )
    return 0


@dataclass(frozen=True)
class RungView:
    environment: str
    model: str
    aliases: dict[str, str | None]
    """alias → the version holding it in this environment's model (None: no holder)."""
    came_from: str | None
    """`<model> v<version>` the holder of the first alias was copied from."""
    next: str | None
    """What the version standing here (holding its first alias) waits for to enter the next rung up."""


def run_ladder(args: argparse.Namespace, target: Target) -> int:
    from ops.__main__ import _read as read_registry

    policies = _policies(args.policies)
    position = _position(policies, args.model)
    views = read_registry(target, lambda registry: ladder_views(policies, registry, position), args.workspace)
    if args.json:
        print(json.dumps({"ladder": position.home, "environments": [view.__dict__ for view in views]}))
        return 0
    print(f"{position.home}'s ladder:")
    for view in views:
        held = ", ".join(f"{alias}=v{version}" if version else f"{alias}=-" for alias, version in view.aliases.items())
        origin = f" (from {view.came_from})" if view.came_from else ""
        print(f"  {view.environment:<10} {view.model:<30} {held}{origin}")
        if view.next:
            print(f"  {'':<10} next: {view.next}")
    return 0


def _other_registry(uri: str) -> ModelRegistry:
    """A rung's other registry, with the credentials MLflow finds in the caller's environment."""
    from functions.adapters.registry_factory import other_registry

    return other_registry(uri)


def ladder_views(policies: PolicySet, registry: ModelRegistry, position: Position) -> list[RungView]:
    from functions.domain.errors import Rejected
    from functions.domain.ladder import check_promotion
    from functions.domain.tags import LADDER_SOURCE_MODEL_TAG, LADDER_SOURCE_VERSION_TAG

    ladder = position.ladder
    now = datetime.now(UTC)
    views = []
    for rung in ladder.environments:
        model = rung.model or ""
        here = _other_registry(rung.registry_uri) if rung.registry_uri else registry
        info = here.get_model(model)
        holders = {alias: (info.aliases.get(alias) if info else None) for alias in rung.aliases}
        standing = holders[rung.aliases[0]]
        came_from, waits = None, []
        if standing:
            version = here.get_version(model, standing)
            if version and version.tags.get(LADDER_SOURCE_MODEL_TAG):
                came_from = f"{version.tags[LADDER_SOURCE_MODEL_TAG]} v{version.tags.get(LADDER_SOURCE_VERSION_TAG)}"
            for above in (r for r in ladder.environments if ladder.below(r) == rung):
                try:
                    step = check_promotion(
                        policies,
                        registry,
                        model,
                        standing,
                        above.name,
                        approver="-",
                        now=now,
                        registry_at=_other_registry,
                    )
                except Rejected as refusal:
                    waits.append(f"v{standing} -> {above.name}: waits: {refusal.message}")
                    continue
                if step.existing is not None:
                    waits.append(f"v{standing} -> {above.name}: there as {above.model} v{step.existing.version}")
                else:
                    approval = " --approver NAME" if above.requires.approval else ""
                    waits.append(
                        f"v{standing} -> {above.name}: ready (ops promote {model} {standing} --to {above.name}{approval})"
                    )
        views.append(RungView(rung.name, model, holders, came_from, "; ".join(waits) or None))
    return views
