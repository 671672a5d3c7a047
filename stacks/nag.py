"""cdk-nag 3 helpers: acknowledgements at the narrowest scope, with finding ids computed the way cdk-nag does.

cdk-nag 3 runs as a CDK validation plugin (`Validations.of(app).add_plugins(...)` in `app.py`): any finding that is
not acknowledged fails the synth. An acknowledgement is `Validations.of(construct).acknowledge(...)` on the
construct that owns the resource (it covers that construct's children, nothing else).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, findings: Mapping[str, str]) -> None:
    """Acknowledge each finding id (`Rule` or `Rule[Finding]`) on `scope`, with its reason."""
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule, reason=reason) for rule, reason in findings.items()))


def acknowledge_tracing(role: IConstruct, function: IConstruct, *, tracing: bool, carried_id: str) -> None:
    """The finding tracing brings, or the one its absence brings: X-Ray's wildcard actions on `role`, or no active
    tracing on `function` (whose logs and metrics carry `carried_id`)."""
    if tracing:
        acknowledge(
            role,
            {
                "AwsSolutions-IAM5[Resource::*]": "Added by Lambda active tracing: xray:PutTraceSegments and "
                "xray:PutTelemetryRecords do not support resource-level permissions.",
            },
        )
    else:
        acknowledge(
            function,
            {
                "Serverless-LambdaTracing": "Active tracing is opt-in (context key `tracing`): the X-Ray SDK is in "
                f"maintenance mode and the function's logs and metrics carry {carried_id}.",
            },
        )


def wildcard_resource_finding(scope: IConstruct, resource: str) -> str:
    """The IAM5 finding id cdk-nag reports for a resource (e.g. `bucket.arn_for_objects('models/*')`)."""
    return f"AwsSolutions-IAM5[Resource::{flatten_cfn_reference(Stack.of(scope).resolve(resource))}]"


def flatten_cfn_reference(node: Any) -> str:
    """A CloudFormation value as cdk-nag prints it in finding ids (port of its `flattenCfnReference`)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(flatten_cfn_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_cfn_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_cfn_reference(resource)}.{flatten_cfn_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_cfn_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_cfn_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
