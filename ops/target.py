"""Which pipeline a command talks to: a running sandbox (its `--json` line) or a deployed stack."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError


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

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region)


def from_sandbox(description: str) -> Target:
    """`description` is the `python -m replay sandbox --json` line, or a file holding it."""
    text = Path(description).read_text() if Path(description).is_file() else description
    try:
        info = json.loads(text)
        target = Target(
            event_bus=info["event_bus"],
            tracking_uri=info["mlflow_tracking_uri"],
            endpoint_url=info["aws_endpoint_url"],
            region=info.get("region", "us-east-1"),
            queues=info.get("queues") or {},
        )
    except (ValueError, KeyError, TypeError) as error:
        raise TargetError(f"--sandbox wants the JSON line of `python -m replay sandbox --json`: {error}") from None
    # The sandbox's emulator accepts any credentials; never borrow real ones for it.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    return target


def from_stack(stack_name: str, *, region: str | None = None) -> Target:
    """The stack's bus from its CloudFormation outputs; MLflow from MLFLOW_TRACKING_URI (as for any client)."""
    try:
        stacks = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack_name)["Stacks"]
    except NoCredentialsError:
        raise TargetError("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from None
    except ClientError as error:
        raise TargetError(f"stack {stack_name!r}: {error.response['Error'].get('Message', error)}") from None
    except BotoCoreError as error:
        raise TargetError(f"stack {stack_name!r}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if "EventBusName" not in outputs:
        raise TargetError(f"stack {stack_name!r} has no EventBusName output: is it a registry-autopilot stack?")
    queues = {
        output[: -len("DeadLetterQueueUrl")]: value
        for output, value in outputs.items()
        if output.endswith("DeadLetterQueueUrl")
    }
    return Target(
        event_bus=outputs["EventBusName"],
        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"),
        region=region,
        queues={
            prefix.lower(): {"queue_url": outputs[f"{prefix}QueueUrl"], "dead_letter_queue_url": url}
            for prefix, url in queues.items()
            if f"{prefix}QueueUrl" in outputs
        },
    )
