"""The recorder: a copy of every event the pipeline sees, in a CloudWatch log group, for `python -m replay record`.

Two rules feed one log group: on the project bus every project event (the archive's pattern), and on the bus the
artifact bucket's S3 events arrive on (the default bus; the project bus for a bucket in another account, whose
forwarder delivers there) those events, including S3 events re-sent under the replay source (`functions.routing`). The log
group target writes each event's full JSON as one log event, so `replay record` downloads them as event files that
`replay local` replays. Replayed events are recorded too (they carry `replay-name`); the archives, not the recorder,
are the durable copy: EventBridge's archive rules leave replayed events out.

- Permission: EventBridge writes to CloudWatch Logs through the log group's resource policy. It is a native
  `AWS::Logs::ResourcePolicy` for `events.amazonaws.com` on this log group only, the statement CDK's
  `CloudWatchLogGroup` target writes, without the custom resource (a Lambda function) CDK uses to install it.
- Opt-in (`-c recorder=true`): that policy is an account-level one, and an account may have at most 10 per region
  (PutResourcePolicy, https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutResourcePolicy.html;
  aws/aws-cdk#31404), shared with every other stack and service that writes logs this way (Route 53 query logs, other
  EventBridge log targets...). An eleventh fails the deployment and rolls the stack back, so a convenience copy
  (the archives are the durable record, and `replay archive` needs no recorder) does not take one by default. The API
  now also has log-group-scoped policies (`resourceArn`, not counted against the 10), but CloudFormation's
  `AWS::Logs::ResourcePolicy` cannot set one (cfn-lint 1.58's schema has no such property), and that EventBridge
  honours them could not be checked without an account.
- Encryption: CloudWatch Logs encrypts log data at rest; the events hold object keys, ETags and model names (what the
  EventBridge archives hold too, also under AWS-owned keys), no model content and no credentials, so a customer
  managed key would add a key policy to maintain and nothing to protect.
- Retention: the functions' log retention (`logRetentionDays`); the log group goes with the stack.
"""

from __future__ import annotations

import jsii
from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct, IDependable

from functions.routing import project_archive_pattern, s3_recorder_pattern
from stacks.constants import TARGET_MAX_EVENT_AGE, TARGET_RETRY_ATTEMPTS
from stacks.constructs.event_buses import to_event_pattern
from stacks.nag import acknowledge


@jsii.implements(events.IRuleTarget)
class _LogGroupTarget:
    """A rule target writing whole events into a log group (permission comes from the log group's resource policy)."""

    def __init__(self, log_group: logs.LogGroup) -> None:
        self._log_group = log_group

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:
        # EventBridge wants the log group ARN without the `:*` suffix of `log_group_arn`.
        arn = Stack.of(self._log_group).format_arn(
            service="logs",
            resource="log-group",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
            resource_name=self._log_group.log_group_name,
        )
        return events.RuleTargetConfig(
            arn=arn,
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=TARGET_RETRY_ATTEMPTS,
                maximum_event_age_in_seconds=int(TARGET_MAX_EVENT_AGE.to_seconds()),
            ),
        )


class Recorder(Construct):
    """`log_group`, `project_events_rule` (project bus) and `artifact_events_rule` (`artifact_events_bus`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifact_events_bus: events.IEventBus,
        project_bus: events.IEventBus,
        bucket_name: str,
        retention: logs.RetentionDays,
    ):
        super().__init__(scope, construct_id)
        self.log_group, policy = self._build_log_group(retention)
        target = _LogGroupTarget(self.log_group)
        self.project_events_rule = events.Rule(
            self,
            "ProjectEventsRule",
            event_bus=project_bus,
            description="registry-autopilot recorder: every project event, for `python -m replay record`",
            event_pattern=to_event_pattern(project_archive_pattern()),
            targets=[target],
        )
        self.artifact_events_rule = events.Rule(
            self,
            "ArtifactEventsRule",
            event_bus=artifact_events_bus,
            description="registry-autopilot recorder: the artifact bucket's S3 events, for `python -m replay record`",
            event_pattern=to_event_pattern(s3_recorder_pattern(bucket_name)),
            targets=[target],
        )
        for rule in (self.project_events_rule, self.artifact_events_rule):
            rule.node.add_dependency(policy)  # EventBridge may write as soon as the rule exists
            acknowledge(
                rule,
                {
                    "Serverless-EventBusDLQ": "The recorder is a convenience copy for `replay record`. Every live event "
                    "it copies is also kept by the bus archives (the durable record, replayed with `replay archive`), "
                    "and a failed write is retried for 24 hours (185 attempts); a dead-letter queue would only hold "
                    "copies of copies.",
                },
            )

    def _build_log_group(self, retention: logs.RetentionDays) -> tuple[logs.LogGroup, IDependable]:
        log_group = logs.LogGroup(self, "LogGroup", retention=retention, removal_policy=RemovalPolicy.DESTROY)
        result = log_group.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeWritesRecordedEvents",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        assert result.policy_dependable is not None  # a LogGroup always creates its resource policy  # nosec B101: CDK contract, checked at synth
        return log_group, result.policy_dependable
