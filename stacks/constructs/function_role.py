"""The role of a function that is not a route's: writes its own log group, and does what `statements` say."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct


def function_role(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    log_group: logs.ILogGroup,
    statements: Sequence[iam.PolicyStatement],
) -> iam.Role:
    """A Lambda role with `WriteOwnLogs` on `log_group` first, then `statements` (one default policy)."""
    role = iam.Role(
        scope, construct_id, description=description, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
    )
    for statement in (
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        ),
        *statements,
    ):
        role.add_to_policy(statement)
    return role
