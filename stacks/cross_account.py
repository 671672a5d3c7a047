"""The policy statements a bucket in another account needs, as JSON text the owners of each side paste.

When the artifact bucket lives in another account (context `artifactBucketAccount`), three resource policies outside
the project stack decide whether the pipeline works:

- the project bus's resource policy, in the project's account: the bucket account may put events on it, and only
  from its forwarder rule (EventBridge: "the receiver account ... edit the permissions on an event bus to allow
  specified AWS accounts"; the rule's `aws:SourceArn` condition is the documented way to allow one rule only,
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html and
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-example-policy-restrict-rule.html);
- the bucket policy, in the bucket's account: the project's reading function roles may get objects and list only
  under the watched prefixes (an identity policy alone does not reach into another account);
- the bucket key's key policy, when the bucket uses SSE-KMS: the same roles may decrypt through S3 only.

The forwarder stack prints them as outputs, and a preflight can print them with `project_side_policies(...)`.
Role ARNs the stack does not know yet stay placeholders (`<register function role ARN>`). Pure Python, no CDK import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from functions.project import PROJECT
from functions.routing import ROUTES
from stacks.route_access import access_for

POLICY_VERSION = "2012-10-17"


def reading_routes() -> tuple[str, ...]:
    """The routes whose functions read artifacts: the principals of the bucket and key statements."""
    return tuple(route.name for route in ROUTES if access_for(route.name).read_artifacts)


def role_placeholder(route_name: str) -> str:
    return f"<{route_name} function role ARN>"


def project_bus_name(stack_name: str) -> str:
    """The project bus's name: the forwarder in the bucket's account names the bus by it, so it is fixed."""
    return f"{stack_name}-events"


def project_bus_arn(*, partition: str, region: str, account: str, stack_name: str) -> str:
    return f"arn:{partition}:events:{region}:{account}:event-bus/{project_bus_name(stack_name)}"


def forwarder_rule_name(bucket_name: str) -> str:
    """The forwarder rule's name, fixed so the project bus's policy can name the rule (64 characters at most)."""
    return f"{PROJECT}-forward-{bucket_name}"[:64]


def forwarder_rule_arn(*, partition: str, region: str, account: str, bucket_name: str) -> str:
    """A rule on the default bus has no bus name in its ARN."""
    return f"arn:{partition}:events:{region}:{account}:rule/{forwarder_rule_name(bucket_name)}"


def project_bus_policy_statement(*, project_bus_arn: str, bucket_account: str, forwarder_rule_arn: str) -> dict:
    """For the project bus (project account): the bucket account's forwarder rule may put events, nothing else."""
    partition = project_bus_arn.split(":")[1]
    return {
        "Sid": "AcceptArtifactEventsFromBucketAccount",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{bucket_account}:root"},
        "Action": "events:PutEvents",
        "Resource": project_bus_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": forwarder_rule_arn}},
    }


def _principals(role_arns: Mapping[str, str] | None) -> dict[str, list[str]]:
    given = role_arns or {}
    return {"AWS": [given.get(name) or role_placeholder(name) for name in reading_routes()]}


def bucket_policy_statements(
    *,
    partition: str,
    bucket_name: str,
    prefixes: Sequence[str],
    role_arns: Mapping[str, str] | None = None,
    dataset_keys: Sequence[str] = (),
) -> list[dict]:
    """For the bucket policy (bucket account): read and list under the watched prefixes, for the reading roles; and
    with `dataset_keys` (the policies' reference datasets, when the stack proves models), read those objects, for
    the validate role alone."""
    cleaned = [prefix.strip("/") for prefix in prefixes]
    bucket_arn = f"arn:{partition}:s3:::{bucket_name}"
    principal = _principals(role_arns)
    datasets = [
        {
            "Sid": "RegistryAutopilotReadReferenceDatasets",
            "Effect": "Allow",
            "Principal": {"AWS": [(role_arns or {}).get("validate") or role_placeholder("validate")]},
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": [f"{bucket_arn}/{key}" for key in sorted(set(dataset_keys))],
        }
    ]
    return [
        {
            "Sid": "RegistryAutopilotReadModels",
            "Effect": "Allow",
            "Principal": principal,
            # GetObjectVersion: the register function reads the exact version the event names.
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": [f"{bucket_arn}/{prefix}/*" for prefix in cleaned],
        },
        {
            "Sid": "RegistryAutopilotListModels",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [p for prefix in cleaned for p in (prefix, f"{prefix}/*")]}},
        },
        *(datasets if dataset_keys else []),
    ]


def key_policy_statement(
    *, region: str, url_suffix: str = "amazonaws.com", role_arns: Mapping[str, str] | None = None
) -> dict:
    """For the bucket key's key policy (bucket account): decrypt, only when S3 asks for it. In a key policy the
    resource is the key itself, written `*`."""
    return {
        "Sid": "RegistryAutopilotDecryptModelsThroughS3",
        "Effect": "Allow",
        "Principal": _principals(role_arns),
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.{url_suffix}"}},
    }


def project_side_policies(
    *,
    project_bus_arn: str,
    bucket_account: str,
    bucket_name: str,
    prefixes: Sequence[str],
    role_arns: Mapping[str, str] | None = None,
    dataset_keys: Sequence[str] = (),
) -> dict[str, Any]:
    """All three, keyed by where each goes. The bus's region and partition are the forwarder's (same region)."""
    _, partition, _, region, *_ = project_bus_arn.split(":")
    rule_arn = forwarder_rule_arn(partition=partition, region=region, account=bucket_account, bucket_name=bucket_name)
    return {
        "projectBusPolicy": {
            "Version": POLICY_VERSION,
            "Statement": [
                project_bus_policy_statement(
                    project_bus_arn=project_bus_arn, bucket_account=bucket_account, forwarder_rule_arn=rule_arn
                )
            ],
        },
        "bucketPolicy": {
            "Version": POLICY_VERSION,
            "Statement": bucket_policy_statements(
                partition=partition,
                bucket_name=bucket_name,
                prefixes=prefixes,
                role_arns=role_arns,
                dataset_keys=dataset_keys,
            ),
        },
        "keyPolicyStatement": key_policy_statement(
            region=region,
            url_suffix="amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
            role_arns=role_arns,
        ),
    }


def render(policies: Mapping[str, Any]) -> str:
    """The policies as the text a preflight prints: one titled JSON document each."""
    return "\n\n".join(f"# {where}\n{json.dumps(document, indent=2)}" for where, document in policies.items())
