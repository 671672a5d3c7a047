"""The operator's view of the pipeline: one dashboard, alarms that say what to do, and notifications.

- **Topic.** Every alarm and notification goes to one SNS topic, encrypted with a KMS key the stack owns (CloudWatch
  and EventBridge cannot publish to a topic under the AWS-managed `aws/sns` key: its policy cannot be changed) and
  TLS-only. The `alarmEmail` context key subscribes an address; anything else (a pager, a chat channel) can
  subscribe to the `AlarmTopicArn` output.
- **Alarms**, per route, built from the stack's pipelines (so a route added to `functions.routing` gets its own):
  the function's errors and throttles, the queue's oldest message, the depth of each dead-letter queue, and the
  rule's failed and lost deliveries. Each alarm's description says what it means and what to run; the README's
  Runbook says the same at length. Every alarm notifies when it fires and when it clears.
- **Notifications.** Rules on the project bus send every failed verdict and every alias move to the topic as one
  readable line (an input transformer naming model, version, alias and reason).
- **Dashboard.** Per route: the function (invocations, errors, throttles, duration), the queue (depth, oldest
  message), the dead letters, then the business metrics `functions.metrics` lists for the route; the alarms on top.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.metrics import BATCH_METRICS, BUSINESS_METRICS, BusinessMetric, Unit, service_name
from functions.models.events import DetailType
from functions.routing import EVENT_SOURCE, Bus, Route
from functions.settings import METRICS_NAMESPACE
from stacks.constants import DEAD_LETTER_RETENTION, TARGET_MAX_EVENT_AGE, TARGET_RETRY_ATTEMPTS, pascal_case
from stacks.constructs.event_buses import to_event_pattern
from stacks.constructs.route_pipeline import RoutePipeline
from stacks.nag import acknowledge

PERIOD = Duration.minutes(5)
QUEUE_AGE_ALARM_SECONDS = 30 * 60
"""Longer than anything the pipeline waits on purpose: a retried message comes back within ~9 minutes (backoff up to
5 minutes, maxReceiveCount 8) and a deferred one is a new message after at most 15 minutes."""
THROTTLE_ALARM_PERIODS = 3
"""Throttled batches wait in the queue and are retried: only a quarter of an hour of them is worth a page."""
README_RUNBOOK = "README.md, section Runbook"


@dataclass(frozen=True)
class Notification:
    """A rule on the project bus that tells the topic about one kind of event, as a sentence."""

    construct_id: str
    description: str
    pattern: dict[str, Any]
    fields: dict[str, str]
    """Placeholder name -> JSON path in the event (the input transformer's InputPathsMap)."""
    template: str
    """The message, with `{placeholder}` for each field and `{stack}` for the stack name."""


NOTIFICATIONS = (
    Notification(
        construct_id="FailedVerdicts",
        description="registry-autopilot: tell the alarm topic about every failed validation",
        pattern={
            "source": [EVENT_SOURCE],
            "detail-type": [DetailType.MODEL_VERSION_VALIDATED.value],
            "detail": {"status": ["failed"]},
        },
        fields={
            "model": "$.detail.model_name",
            "version": "$.detail.version",
            "reasons": "$.detail.reasons",
            "policy": "$.detail.policy",
            "correlation_id": "$.detail.correlation_id",
        },
        template=(
            "registry-autopilot: model {model} version {version} FAILED validation against policy {policy}, so no "
            "alias will move to it. Reasons: {reasons}. Correlation id: {correlation_id}. "
            "Details: python -m ops --stack {stack} verdict {model} {version}. "
            "After fixing the policy: python -m ops --stack {stack} validate {model} {version}."
        ),
    ),
    Notification(
        construct_id="AliasMoves",
        description="registry-autopilot: tell the alarm topic about every alias move",
        pattern={"source": [EVENT_SOURCE], "detail-type": [DetailType.MODEL_ALIAS_MOVED.value]},
        fields={
            "model": "$.detail.model_name",
            "version": "$.detail.version",
            "alias": "$.detail.alias",
            "previous_version": "$.detail.previous_version",
            "reason": "$.detail.reason",
            "actor": "$.detail.actor",
            "correlation_id": "$.detail.correlation_id",
        },
        template=(
            "registry-autopilot: alias {alias} of model {model} now points at version {version} (it pointed at "
            "{previous_version}), moved by {actor}. Why: {reason}. Correlation id: {correlation_id}. "
            "To undo: python -m ops --stack {stack} rollback {model} --alias {alias}."
        ),
    ),
    Notification(
        construct_id="PendingPromotions",
        description="registry-autopilot: tell the alarm topic about every promotion awaiting approval",
        pattern={"source": [EVENT_SOURCE], "detail-type": [DetailType.PROMOTION_PENDING.value]},
        fields={
            "model": "$.detail.model_name",
            "version": "$.detail.version",
            "alias": "$.detail.alias",
            "reason": "$.detail.reason",
            "correlation_id": "$.detail.correlation_id",
        },
        template=(
            "registry-autopilot: model {model} version {version} passed validation and awaits approval for alias "
            "{alias}. Why: {reason}. Correlation id: {correlation_id}. "
            # No literal angle brackets here: EventBridge reads any <name> as a placeholder and refuses the rule
            # (PutTargets) when InputPathsMap has no such key. `ops promote` records the caller's user name.
            "To approve: python -m ops --stack {stack} promote {model} {version} --alias {alias} "
            "(the approver recorded is your user name; add --approver NAME to record another)."
        ),
    ),
)


def dead_letter_queues(pipeline: RoutePipeline) -> list[sqs.Queue]:
    """Every queue of the pipeline that is not its work queue (the queue's DLQ, and any delivery DLQ)."""
    work_queue = pipeline.queue.node.path
    return [c for c in pipeline.node.children if isinstance(c, sqs.Queue) and c.node.path != work_queue]


def kebab_case(construct_id: str) -> str:
    """`DeliveryDeadLetterQueue` -> `delivery-dead-letter-queue` (for alarm names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", construct_id).lower()


class Monitoring(Construct):
    """`key`, `topic`, `notification_rules`, `notification_dead_letter_queue`, `alarms` (by `<route>/<what>`),
    `dashboard`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipelines: Mapping[str, RoutePipeline],
        project_bus: events.IEventBus,
        alarm_email: str,
    ):
        super().__init__(scope, construct_id)
        self._stack_name = Stack.of(self).stack_name
        self._prefix = f"{self._stack_name}-"  # every alarm's name starts with it (the key policy relies on it)
        self._project_bus = project_bus
        self.key = self._build_key()
        self.notification_dead_letter_queue = self._build_notification_dead_letter_queue()
        self.topic = self._build_topic(alarm_email)
        self.notification_role = self._build_notification_role()
        self.notification_rules = {n.construct_id: self._build_notification(n) for n in NOTIFICATIONS}
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, pipeline in pipelines.items():
            self._add_route_alarms(name, pipeline)
        self._add_notification_alarms()
        self.dashboard = self._build_dashboard(pipelines)
        self._add_outputs()
        self._acknowledge_findings()

    # --- topic ------------------------------------------------------------------------------------------------------

    def _build_key(self) -> kms.Key:
        key = kms.Key(
            self,
            "TopicKey",
            description=f"{self._stack_name}: encrypts the alarm and notification topic",
            enable_key_rotation=True,
            alias=f"alias/{self._stack_name}-alerts",
            # Nothing durable is encrypted with it (SNS keeps no messages): it goes with the stack.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisStack",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions=self._alarm_source_conditions(),
            )
        )
        # The notification rules publish through a role whose IAM policy grants this key's use (the key policy's
        # account statement lets IAM decide). AWS's documents disagree on whether that is enough: the SNS guide
        # ("Enable compatibility between event sources from AWS services and encrypted topics",
        # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html) asks for a key policy statement for
        # events.amazonaws.com. So the key also trusts EventBridge, for rules on this stack's project bus in this
        # account only: either path works.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeNotificationRulesOfThisStack",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions=self._notification_source_conditions(),
            )
        )
        return key

    def _notification_source_conditions(self) -> dict[str, Any]:
        # Rules on a custom bus have ARNs rule/<bus name>/<rule name>; the bus name is a Ref (no dependency cycle:
        # the bus needs nothing from the key).
        rules = f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{self._project_bus.event_bus_name}/*"
        return {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}, "ArnLike": {"aws:SourceArn": rules}}

    def _alarm_source_conditions(self) -> dict[str, Any]:
        alarms = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{self._prefix}*"
        return {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}, "ArnLike": {"aws:SourceArn": alarms}}

    def _build_topic(self, alarm_email: str) -> sns.Topic:
        topic = sns.Topic(
            self, "Topic", display_name=f"{self._stack_name} alerts"[:100], master_key=self.key, enforce_ssl=True
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisStack",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=self._alarm_source_conditions(),
            )
        )
        if alarm_email:
            topic.add_subscription(
                subscriptions.EmailSubscription(alarm_email, dead_letter_queue=self.notification_dead_letter_queue)
            )
        return topic

    # --- notifications ----------------------------------------------------------------------------------------------

    def _build_notification_dead_letter_queue(self) -> sqs.Queue:
        return sqs.Queue(
            self,
            "NotificationDeadLetterQueue",
            retention_period=DEAD_LETTER_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )

    def _build_notification_role(self) -> iam.IRole:
        """The role the notification rules publish with: this topic and its key, with exact actions.

        CDK's SNS target grants its role `kms:GenerateDataKey*` itself; the role is handed over without policy updates
        so that the statements below are all it gets.
        """
        role = iam.Role(
            self,
            "NotificationRole",
            description=f"{self._stack_name}: EventBridge publishes notifications to the alarm topic",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
        )
        role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
        role.add_to_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn])
        )
        return role.without_policy_updates()

    def _build_notification(self, notification: Notification) -> events.Rule:
        placeholders = {name: events.EventField.from_path(path) for name, path in notification.fields.items()}
        message = notification.template.format(stack=self._stack_name, **placeholders)
        rule = events.Rule(
            self,
            notification.construct_id,
            event_bus=self._project_bus,
            description=notification.description,
            event_pattern=to_event_pattern(notification.pattern),
        )
        rule.add_target(
            targets.SnsTopic(
                self.topic,
                message=events.RuleTargetInput.from_text(message),
                # A role of this stack, instead of a topic policy open to every EventBridge rule.
                role=self.notification_role,
                dead_letter_queue=self.notification_dead_letter_queue,
                retry_attempts=TARGET_RETRY_ATTEMPTS,
                max_event_age=TARGET_MAX_EVENT_AGE,
            )
        )
        return rule

    # --- alarms -----------------------------------------------------------------------------------------------------

    def _add_route_alarms(self, name: str, pipeline: RoutePipeline) -> None:
        route, function, queue, stack = pipeline.route, pipeline.function, pipeline.queue, self._stack_name
        logs = f"aws logs tail {pipeline.log_group.log_group_name} --since 1h"
        self._alarm(
            f"{name}/errors",
            function.metric_errors(period=PERIOD, statistic="Sum"),
            threshold=1,
            description=f"The {name} function failed whole invocations (a crash at start, bad configuration, a "
            f"timeout or out of memory); failures of single records do not count here. The batch is retried and "
            f"dead-lettered after {route.max_receive_count} receives. Read the error: {logs} --filter-pattern ERROR. "
            f"Fix the configuration or roll the code back (git revert, make deploy), then redrive: "
            f"python -m ops --stack {stack} redrive {name}. Runbook: {README_RUNBOOK}.",
        )
        self._alarm(
            f"{name}/throttles",
            function.metric_throttles(period=PERIOD, statistic="Sum"),
            threshold=1,
            periods=THROTTLE_ALARM_PERIODS,
            description=f"Lambda has refused to run the {name} function for {THROTTLE_ALARM_PERIODS * 5} minutes "
            "(the account's concurrency is used up). Nothing is lost: messages wait in the queue. Check the account "
            "limit (aws lambda get-account-settings) and what else uses it; ask for a higher limit. "
            f"Runbook: {README_RUNBOOK}.",
        )
        self._alarm(
            f"{name}/queue-age",
            queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
            threshold=QUEUE_AGE_ALARM_SECONDS,
            description=f"A message has waited more than {QUEUE_AGE_ALARM_SECONDS // 60} minutes in the {name} queue: "
            "the function is not keeping up or not consuming (event source mapping disabled, function failing at "
            f"start, concurrency too low for the load). Check the {name} errors and throttles alarms, then the "
            f"mapping: aws lambda list-event-source-mappings --function-name {function.function_name}. Messages "
            f"are kept 4 days. Runbook: {README_RUNBOOK}.",
        )
        for dead_letters in dead_letter_queues(pipeline):
            kind = kebab_case(dead_letters.node.id)
            if dead_letters.node.path == pipeline.dead_letter_queue.node.path:
                description = (
                    f"The {name} dead-letter queue holds messages: events the function refused (bad input: their "
                    f"`reason` attribute says why) or gave up on after {route.max_receive_count} tries (a dependency "
                    f"was down), or events EventBridge could not deliver. List them with their reasons: python -m ops "
                    f"--stack {stack} redrive {name} --dry-run. Once the cause is fixed, move them back: python -m ops "
                    f"--stack {stack} redrive {name} (or aws sqs start-message-move-task --source-arn "
                    f"{dead_letters.queue_arn} --destination-arn {queue.queue_arn})."
                )
            else:  # a FIFO route's standard queue for what EventBridge could not deliver to the FIFO queue
                archive = "project" if route.bus is Bus.PROJECT else "artifacts"
                description = (
                    f"The {name} {kind.replace('-', ' ')} holds events EventBridge could not deliver to the {name} "
                    "queue (its policy, its KMS key, or the queue was deleted). Fix the cause; the events are in the "
                    f"{archive} archive: replay that window (python -m replay archive --stack {stack} --archive "
                    f"{archive} --rule {name} --from <when it began>), then purge this queue."
                )
            self._alarm(
                f"{name}/{kind}",
                dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                threshold=1,
                description=f"{description} Runbook: {README_RUNBOOK}.",
            )
        self._add_rule_alarms(name, pipeline.rule, route.bus, f"the {name} queue")

    def _add_notification_alarms(self) -> None:
        for construct_id, rule in self.notification_rules.items():
            self._add_rule_alarms(f"notify-{kebab_case(construct_id)}", rule, Bus.PROJECT, "the alarm topic")
        self._alarm(
            "notifications/dead-letter-queue",
            self.notification_dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            ),
            threshold=1,
            description="Alerts could not be delivered: EventBridge could not publish a notification (failed verdict, "
            "alias move) to the alarm topic, or SNS could not deliver to the e-mail subscription. Check the "
            "notification rules' roles, the topic's KMS key and the subscription. The messages hold the alert "
            "text; read them with aws sqs receive-message --queue-url "
            f"{self.notification_dead_letter_queue.queue_url}. Runbook: {README_RUNBOOK}.",
        )

    def _add_rule_alarms(self, name: str, rule: events.Rule, bus: Bus, target: str) -> None:
        self._alarm(
            f"{name}/delivery-failed",
            self._rule_metric(rule, bus, "FailedInvocations"),
            threshold=1,
            description=f"EventBridge gave up delivering events of the {name} rule to {target} (after its retries, "
            "or at once for a permission or KMS error); they went to the rule's dead-letter queue. Fix the target's "
            f"policy, then redrive (see the dead-letter queue alarm). Runbook: {README_RUNBOOK}.",
        )
        self._alarm(
            f"{name}/events-lost",
            self._rule_metric(rule, bus, "InvocationsFailedToBeSentToDlq"),
            threshold=1,
            description=f"EventBridge could not deliver events of the {name} rule to {target} nor to its dead-letter "
            "queue: those events are lost from the pipeline. Fix the dead-letter queue's policy, then replay the "
            f"window from the archive: python -m replay archive --stack {self._stack_name} --from <when it began> "
            f"(or aws events start-replay). Runbook: {README_RUNBOOK}.",
        )

    def _rule_metric(self, rule: events.Rule, bus: Bus, metric_name: str) -> cloudwatch.Metric:
        # Rules on the default bus report RuleName only; rules on a custom bus add EventBusName.
        dimensions = {"RuleName": rule.rule_name}
        if bus is Bus.PROJECT:
            dimensions["EventBusName"] = self._project_bus.event_bus_name
        return cloudwatch.Metric(
            namespace="AWS/Events", metric_name=metric_name, dimensions_map=dimensions, statistic="Sum", period=PERIOD
        )

    def _alarm(
        self, key: str, metric: cloudwatch.IMetric, *, threshold: float, description: str, periods: int = 1
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            f"{pascal_case(key.replace('/', '-'))}Alarm",
            alarm_name=f"{self._prefix}{key.replace('/', '-')}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            # No data means nothing happened: these metrics are only sent while there is activity.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = cloudwatch_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[key] = alarm
        return alarm

    # --- dashboard --------------------------------------------------------------------------------------------------

    def _build_dashboard(self, pipelines: Mapping[str, RoutePipeline]) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=self._stack_name, default_interval=Duration.hours(6)
        )
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {self._stack_name}\nOne row per route: its function, its queue and its dead letters, "
                "then what it did (business metrics). Every alarm says what to do; the README's Runbook says more.",
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(alarms=list(self.alarms.values()), title="Alarms", width=24, height=6)
        )
        for name, pipeline in pipelines.items():
            dashboard.add_widgets(*self._operational_widgets(name, pipeline))
            dashboard.add_widgets(*self._business_widgets(name, pipeline.route))
        dashboard.add_widgets(*self._notification_widgets())
        return dashboard

    def _operational_widgets(self, name: str, pipeline: RoutePipeline) -> list[cloudwatch.IWidget]:
        function, queue = pipeline.function, pipeline.queue
        return [
            cloudwatch.GraphWidget(
                title=f"{name}: function invocations, errors, throttles",
                left=[
                    function.metric_invocations(period=PERIOD, statistic="Sum"),
                    function.metric_errors(period=PERIOD, statistic="Sum"),
                    function.metric_throttles(period=PERIOD, statistic="Sum"),
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{name}: function duration (ms)",
                left=[function.metric_duration(period=PERIOD, statistic=s) for s in ("p50", "p99", "Maximum")],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=pipeline.route.timeout_seconds * 1000, label="timeout")
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{name}: queue depth and oldest message (s)",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                    queue.metric_approximate_number_of_messages_not_visible(period=PERIOD, statistic="Maximum"),
                    queue.metric_approximate_number_of_messages_delayed(period=PERIOD, statistic="Maximum"),
                ],
                right=[queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum")],
                right_annotations=[cloudwatch.HorizontalAnnotation(value=QUEUE_AGE_ALARM_SECONDS, label="alarm")],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{name}: dead letters and failed deliveries",
                left=[
                    q.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum", label=f"{kebab_case(q.node.id)} depth"
                    )
                    for q in dead_letter_queues(pipeline)
                ]
                + [self._rule_metric(pipeline.rule, pipeline.route.bus, "FailedInvocations")],
                width=6,
            ),
        ]

    def _business_widgets(self, name: str, route: Route) -> list[cloudwatch.IWidget]:
        own = BUSINESS_METRICS.get(name, ())
        counts = [m for m in own if m.unit is Unit.COUNT]
        latencies = [m for m in own if m.unit is Unit.SECONDS]
        widgets: list[cloudwatch.IWidget] = []
        if counts:
            widgets.append(
                cloudwatch.GraphWidget(
                    title=f"{name}: outcomes", left=[self._business_metric(name, m) for m in counts], width=8
                )
            )
        widgets.append(
            cloudwatch.GraphWidget(
                title=f"{name}: rejected, deferred, retried (by reason)",
                left=[self._business_metric(name, m) for m in BATCH_METRICS],
                width=8,
            )
        )
        if latencies:
            widgets.append(
                cloudwatch.GraphWidget(
                    title=f"{name}: seconds from upload",
                    left=[
                        cloudwatch.Metric(
                            namespace=METRICS_NAMESPACE,
                            metric_name=m.name,
                            dimensions_map={"service": service_name(name)},
                            statistic=statistic,
                            period=PERIOD,
                            label=f"{m.name} {statistic}",
                        )
                        for m in latencies
                        for statistic in ("p50", "p90", "Maximum")
                    ],
                    width=8,
                )
            )
        return widgets

    def _business_metric(self, route_name: str, metric: BusinessMetric) -> cloudwatch.IMetric:
        service = service_name(route_name)
        if metric.dimension is None:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=metric.name,
                dimensions_map={"service": service},
                statistic="Sum",
                period=PERIOD,
            )
        # The dimension's values (reasons, models, aliases) are only known at run time: search for them.
        return cloudwatch.SearchExpression(
            expression=f"SEARCH('{{{METRICS_NAMESPACE},{metric.dimension},service}} "
            f'MetricName="{metric.name}" service="{service}"\', \'Sum\', {PERIOD.to_seconds()})',
            label=metric.name,
            period=PERIOD,
        )

    def _notification_widgets(self) -> list[cloudwatch.IWidget]:
        rules = self.notification_rules.items()
        return [
            cloudwatch.GraphWidget(
                title="notifications: sent and failed",
                left=[
                    self._rule_metric(rule, Bus.PROJECT, metric).with_(label=f"{construct_id} {metric}")
                    for construct_id, rule in rules
                    for metric in ("Invocations", "FailedInvocations")
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="notifications: dead letters",
                left=[
                    self.notification_dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum"
                    )
                ],
                width=12,
            ),
        ]

    # --- outputs and cdk-nag ----------------------------------------------------------------------------------------

    def _add_outputs(self) -> None:
        for logical_id, value, description in (
            ("AlarmTopicArn", self.topic.topic_arn, "Alarms and notifications (subscribe a pager or chat here)"),
            ("DashboardName", self.dashboard.dashboard_name, "The pipeline's CloudWatch dashboard"),
        ):
            CfnOutput(self, logical_id, value=value, description=description).override_logical_id(logical_id)

    def _acknowledge_findings(self) -> None:
        acknowledge(
            self.notification_dead_letter_queue,
            {
                "AwsSolutions-SQS3": "This queue is a dead-letter queue, of the notification rules' targets "
                "(EventBridge -> SNS) and of the e-mail subscription (SNS -> e-mail), which cdk-nag cannot see; it "
                "has no queue of its own to be the DLQ of.",
                "Serverless-SQSRedrivePolicy": "Terminal dead-letter queue of undeliverable alerts: a redrive "
                "policy would only move them to yet another queue. Kept 14 days.",
            },
        )
