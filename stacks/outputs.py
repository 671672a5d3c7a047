"""The names of the stack's CloudFormation outputs that tools read, in one place.

`python -m replay archive|send|record --stack NAME` finds the deployed resources through these outputs
(`replay.aws_stack`), and the construct writes them (`stacks.autopilot`). Pure Python, no CDK import, so the replay
command line can import it without starting jsii; `tests/infrastructure` checks the template has every one.
"""

from __future__ import annotations

BUCKET_NAME = "BucketName"
ARTIFACT_ROOT_URI = "ArtifactRootUri"
EVENT_BUS_NAME = "EventBusName"
IMPORTED_BUCKET_NAME = "ImportedBucketName"
"""Only when the stack uses an existing bucket (`artifactBucketName`): what `python -m ops preflight --stack` checks."""
ARTIFACT_BUCKET_KEY_ARN = "ArtifactBucketKeyArn"
"""The existing bucket's SSE-KMS key (`artifactBucketKeyArn`), when it has one."""
ARTIFACT_EVENTS_ARCHIVE_NAME = "ArtifactEventsArchiveName"
"""The archive of the artifact bucket's S3 events, on the default bus."""
PROJECT_EVENTS_ARCHIVE_NAME = "ProjectEventsArchiveName"
"""The archive of every project event, on the project bus."""
RECORDER_LOG_GROUP_NAME = "RecorderLogGroupName"
ARTIFACT_BUCKET_ACCOUNT = "ArtifactBucketAccount"
"""A bucket in another account (`artifactBucketAccount`): that account, which `ops preflight --stack` expects to own
the bucket."""
ARTIFACT_BUCKET_POLICY = "ArtifactBucketPolicy"
"""A bucket in another account (`artifactBucketAccount`): the bucket policy its owner adds (real role ARNs)."""
ARTIFACT_BUCKET_KEY_POLICY_STATEMENT = "ArtifactBucketKeyPolicyStatement"
"""The same, for the key policy of the bucket's SSE-KMS key (`artifactBucketKeyArn`)."""


def pascal_case(name: str) -> str:
    """`register` -> `Register`, `promote-alias` -> `PromoteAlias` (for construct ids and output names)."""
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_") if part)


def rule_arn(route_name: str) -> str:
    """The output holding the ARN of a route's rule (what `replay archive --rule <route>` filters on)."""
    return f"{pascal_case(route_name)}RuleArn"


def queue_url(route_name: str) -> str:
    return f"{pascal_case(route_name)}QueueUrl"


def dead_letter_queue_url(route_name: str) -> str:
    return f"{pascal_case(route_name)}DeadLetterQueueUrl"
