"""The forwarder for an artifact bucket in another account: deployed in the bucket's account, not the project's.

S3 puts a bucket's events on the default bus of the bucket's own account, so a project stack in another account
never sees them. This stack, deployed in the bucket's account and region, has one rule on that default bus: the
bucket's `Object Created` events for `…/MLmodel` keys under the watched prefixes (`functions.routing.
s3_forward_pattern`, the register pattern narrowed), sent to the project bus in the project's account. Events
forwarded bus to bus keep their `source` (aws.s3), `detail-type` and `detail`, so the project's register rule, put on
its project bus (`functions.routing.receiving_forwarded_events`), matches them unchanged.

EventBridge's rules for it ("Sending and receiving events between AWS accounts",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html, and "Permissions for event buses",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html): the receiving bus needs a resource
policy allowing the sending account (output `ProjectBusPolicy`, added on the project's side), and the rule's target
uses an IAM role of the sending account allowed events:PutEvents on the receiving bus (AWS: "We recommend always
using IAM roles when the target of a rule is an event bus"; required for a cross-account bus target). The target
retries like the project's own rules and dead-letters into an encrypted queue with an alarm.

Outputs also carry the bucket policy and key policy statements the bucket's owner adds so that the project's
function roles can read the models (`stacks.cross_account`; role ARNs as placeholders).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import App, CfnOutput, Duration, Environment, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.routing import s3_forward_pattern
from stacks.alarms import ALARMS, PERIOD_MINUTES
from stacks.config import BUCKET_ACCOUNT_CONTEXT_KEY, ConfigError
from stacks.constants import DEAD_LETTER_RETENTION, TARGET_MAX_EVENT_AGE, TARGET_RETRY_ATTEMPTS
from stacks.constructs.event_buses import to_event_pattern
from stacks.constructs.writer_access import artifact_prefixes
from stacks.cross_account import forwarder_rule_name, project_side_policies, render
from stacks.nag import acknowledge

_BUS_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):events:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):event-bus/[A-Za-z0-9._\-/]+$"
)
_ACCOUNT = re.compile(r"^\d{12}$")


class ArtifactEventsForwarderStack(Stack):
    """`rule` (default bus -> project bus), `role` (its target's), `dead_letter_queue`, `alarm`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project_bus_arn: str,
        bucket_name: str,
        prefixes: Sequence[str],
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        bus_arn = _BUS_ARN.fullmatch(project_bus_arn)
        if not bus_arn:
            raise ConfigError(
                f"the project bus ARN must be arn:<partition>:events:<region>:<account>:event-bus/<name>; "
                f"got {project_bus_arn!r}"
            )
        if not Token.is_unresolved(self.account) and self.account == bus_arn["account"]:
            raise ConfigError(
                f"the forwarder belongs in the bucket's account, not the project's ({self.account}): a bucket in the "
                "project's own account needs no forwarder"
            )
        pattern = s3_forward_pattern(bucket_name, prefixes)

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        self.role = iam.Role(
            self,
            "Role",
            description="registry-autopilot: forwards the artifact bucket's model uploads to the project bus",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
        )
        project_bus = events.EventBus.from_event_bus_arn(self, "ProjectBus", project_bus_arn)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=forwarder_rule_name(bucket_name),
            description=f"registry-autopilot: model uploads of {bucket_name} to the project bus"[:512],
            event_pattern=to_event_pattern(pattern),
            # The EventBus target adds exactly events:PutEvents on the bus's ARN to this role, and the dead-letter
            # queue's policy for this rule.
            targets=[targets.EventBus(project_bus, role=self.role, dead_letter_queue=self.dead_letter_queue)],
        )
        # CDK's EventBus target has no retry settings: the same as the project's own targets (stacks.constants).
        self.rule.node.default_child.add_property_override(
            "Targets.0.RetryPolicy",
            {
                "MaximumRetryAttempts": TARGET_RETRY_ATTEMPTS,
                "MaximumEventAgeInSeconds": TARGET_MAX_EVENT_AGE.to_seconds(),
            },
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "DeadLetterQueueAlarm",
            alarm_name=f"{self.stack_name}-forwarder-dead-letter-queue",
            alarm_description=ALARMS["forwarder-dead-letter-queue"].description(
                forwarder_queue_url=self.dead_letter_queue.queue_url
            ),
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(PERIOD_MINUTES), statistic="Maximum"
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        policies = project_side_policies(
            project_bus_arn=project_bus_arn, bucket_account=self.account, bucket_name=bucket_name, prefixes=prefixes
        )
        descriptions = {
            "projectBusPolicy": "Add to the project bus's resource policy (project account)",
            "bucketPolicy": "Add to the bucket policy (bucket account); replace the role placeholders",
            "keyPolicyStatement": "Add to the bucket key's key policy if SSE-KMS (bucket account)",
        }
        for where, document in policies.items():
            output_id = where[0].upper() + where[1:]
            CfnOutput(self, output_id, value=self.to_json_string(document), description=descriptions[where])
        CfnOutput(self, "ForwarderDeadLetterQueueUrl", value=self.dead_letter_queue.queue_url)
        self.policies_text = render(policies)
        """The same statements as text (unresolved tokens where the stack has no env); a preflight prints them."""
        acknowledge(
            self.dead_letter_queue,
            {
                "AwsSolutions-SQS3": "This is the dead-letter queue of the forwarder rule's target (EventBridge "
                "DeadLetterConfig); cdk-nag only recognises queues named in another queue's redrive policy.",
                "Serverless-SQSRedrivePolicy": "Terminal dead-letter queue of the forwarder rule: a redrive policy "
                "would only move undeliverable events to yet another queue. Kept 14 days; its alarm says what to do.",
            },
        )


def forwarder_stack_from_context(
    app: App,
    *,
    project_bus_arn: str,
    bucket_name: str,
    artifact_root_prefix: str,
    stack_name: str = "RegistryAutopilotForwarder",
) -> ArtifactEventsForwarderStack | None:
    """The forwarder stack when context `artifactBucketAccount` is set (None otherwise), bound to that account and to
    the project bus's region, watching the same prefixes the project stack grants (`models/` and the artifact root)."""
    account = app.node.try_get_context(BUCKET_ACCOUNT_CONTEXT_KEY)
    if account in (None, ""):
        return None
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise ConfigError(f"context key {BUCKET_ACCOUNT_CONTEXT_KEY!r} must be a 12-digit account id; got {account!r}")
    bus_arn = _BUS_ARN.fullmatch(project_bus_arn)
    if not bus_arn:
        raise ConfigError(f"the project bus ARN is not an event bus ARN: {project_bus_arn!r}")
    return ArtifactEventsForwarderStack(
        app,
        stack_name,
        project_bus_arn=project_bus_arn,
        bucket_name=bucket_name,
        prefixes=artifact_prefixes(artifact_root_prefix),
        env=Environment(account=account, region=bus_arn["region"]),
    )
