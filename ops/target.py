"""Which pipeline a command talks to: a running sandbox (its `--json` line) or a deployed stack (opened as `replay`
opens one: `replay.aws_stack`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from functions.project import SANDBOX_REGION
from functions.routing import ROUTES
from replay.aws_stack import AwsProblem, DeployedStack, open_stack
from stacks.outputs import EVENT_BUS_NAME, dead_letter_queue_url, queue_url


class TargetError(RuntimeError):
    """The target cannot be reached or described; the message says what to do."""


@dataclass(frozen=True)
class Target:
    event_bus: str
    tracking_uri: str | None
    endpoint_url: str | None = None
    region: str | None = None
    queues: dict[str, dict[str, str]] | None = None
    """route name → {"queue_url", "dead_letter_queue_url"} (for `redrive`)."""
    stack: DeployedStack | None = None
    """The deployed stack, when the target is one: its clients use the session that found it."""

    def client(self, service: str) -> Any:
        if self.stack is not None:
            return self.stack.client(service)
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region)


def from_sandbox(description: str) -> Target:
    """`description` is the `python -m sandbox --json` line, or a file holding it."""
    text = Path(description).read_text() if Path(description).is_file() else description
    try:
        info = json.loads(text)
        target = Target(
            event_bus=info["event_bus"],
            tracking_uri=info["mlflow_tracking_uri"],
            endpoint_url=info["aws_endpoint_url"],
            region=info.get("region", SANDBOX_REGION),
            queues=info.get("queues") or {},
        )
    except (ValueError, KeyError, TypeError) as error:
        raise TargetError(f"--sandbox wants the JSON line of `python -m sandbox --json`: {error}") from None
    # The sandbox's emulator accepts any credentials; never borrow real ones for it.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    return target


def from_stack(stack_name: str, *, region: str | None = None) -> Target:
    """The stack's bus from its CloudFormation outputs (`replay.aws_stack.open_stack`, as for `replay`); MLflow from
    MLFLOW_TRACKING_URI (as for any client)."""
    try:
        stack = open_stack(stack_name, region=region)
        event_bus = stack.output(EVENT_BUS_NAME)
    except AwsProblem as problem:
        raise TargetError(f"stack {stack_name!r}: {problem}") from None
    outputs = stack.outputs
    return Target(
        event_bus=event_bus,
        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"),
        region=stack.region,
        queues={
            route.name: {
                "queue_url": outputs[queue_url(route.name)],
                "dead_letter_queue_url": outputs[dead_letter_queue_url(route.name)],
            }
            for route in ROUTES
            if queue_url(route.name) in outputs and dead_letter_queue_url(route.name) in outputs
        },
        stack=stack,
    )
