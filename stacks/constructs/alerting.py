"""The alarm topic, its key, and alarms that say what to do.

- **Topic.** Every alarm and notification goes to one SNS topic, encrypted with a KMS key the stack owns (CloudWatch
  and EventBridge cannot publish to a topic under the AWS-managed `aws/sns` key: its policy cannot be changed) and
  TLS-only. The `alarmEmail` context key subscribes an address; anything else (a pager, a chat channel) can
  subscribe to the `AlarmTopicArn` output.
- **Alarms**, per route, built from the stack's pipelines (so a route added to `functions.routing` gets its own):
  the function's errors and throttles, the queue's oldest message, the depth of each dead-letter queue, and the
  rule's failed and lost deliveries; and the same for the notification rules. Each alarm's description says what it
  means and what to run, from the texts of `stacks/alarms.py` (the runbook, `docs/alarms.md`, renders the same
  texts). Every alarm notifies when it fires and when it clears.

Everything is built in the scope it is given (the monitoring construct), so the logical ids stay those of the
resources deployed before this module was split off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.routing import Bus
from stacks.alarms import ALARMS, PERIOD_MINUTES, QUEUE_AGE_ALARM_SECONDS, THROTTLE_ALARM_PERIODS
from stacks.constants import pascal_case
from stacks.constructs.route_pipeline import RoutePipeline

PERIOD = Duration.minutes(PERIOD_MINUTES)


def dead_letter_queues(pipeline: RoutePipeline) -> list[sqs.Queue]:
    """Every queue of the pipeline that is not its work queue (the queue's DLQ, and any delivery DLQ)."""
    work_queue = pipeline.queue.node.path
    return [c for c in pipeline.node.children if isinstance(c, sqs.Queue) and c.node.path != work_queue]


def kebab_case(construct_id: str) -> str:
    """`DeliveryDeadLetterQueue` -> `delivery-dead-letter-queue` (for alarm names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", construct_id).lower()


def rule_metric(rule: events.Rule, bus: Bus, project_bus: events.IEventBus, metric_name: str) -> cloudwatch.Metric:
    """An AWS/Events metric of one rule. Rules on the default bus report RuleName only; rules on a custom bus add
    EventBusName."""
    dimensions = {"RuleName": rule.rule_name}
    if bus is Bus.PROJECT:
        dimensions["EventBusName"] = project_bus.event_bus_name
    return cloudwatch.Metric(
        namespace="AWS/Events", metric_name=metric_name, dimensions_map=dimensions, statistic="Sum", period=PERIOD
    )


class Alerting:
    """`key`, `topic` and `alarms` (by `<route>/<what>`), built in `scope`."""

    def __init__(
        self,
        scope: Construct,
        *,
        project_bus: events.IEventBus,
        alarm_email: str,
        email_dead_letter_queue: sqs.IQueue,
    ):
        self._scope = scope
        self._stack_name = Stack.of(scope).stack_name
        self._prefix = f"{self._stack_name}-"  # every alarm's name starts with it (the key policy relies on it)
        self._project_bus = project_bus
        self.key = self._build_key()
        self.topic = self._build_topic(alarm_email, email_dead_letter_queue)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

    # --- topic ------------------------------------------------------------------------------------------------------

    def _build_key(self) -> kms.Key:
        key = kms.Key(
            self._scope,
            "TopicKey",
            description=f"{self._stack_name}: encrypts the alarm and notification topic",
            enable_key_rotation=True,
            alias=f"alias/{self._stack_name}-alerts",
            # Nothing durable is encrypted with it (SNS keeps no messages): it goes with the stack.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # CloudWatch may use the key for this stack's alarms. The notification rules publish through a role whose IAM
        # policy grants this key's use (the key policy's account statement lets IAM decide). AWS's documents disagree
        # on whether that is enough: the SNS guide ("Enable compatibility between event sources from AWS services and
        # encrypted topics", https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html) asks for a key policy
        # statement for events.amazonaws.com. So the key also trusts EventBridge, for rules on this stack's project
        # bus in this account only: either path works.
        for sid, service, conditions in (
            ("CloudWatchAlarmsOfThisStack", "cloudwatch.amazonaws.com", self._alarm_source_conditions()),
            ("EventBridgeNotificationRulesOfThisStack", "events.amazonaws.com", self._notification_source_conditions()),
        ):
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=["*"],
                    conditions=conditions,
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

    def _build_topic(self, alarm_email: str, email_dead_letter_queue: sqs.IQueue) -> sns.Topic:
        topic = sns.Topic(
            self._scope,
            "Topic",
            display_name=f"{self._stack_name} alerts"[:100],
            master_key=self.key,
            enforce_ssl=True,
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
                subscriptions.EmailSubscription(alarm_email, dead_letter_queue=email_dead_letter_queue)
            )
        return topic

    # --- alarms -----------------------------------------------------------------------------------------------------

    def add_route_alarms(self, name: str, pipeline: RoutePipeline) -> None:
        route, function, queue, stack = pipeline.route, pipeline.function, pipeline.queue, self._stack_name
        self._alarm(
            f"{name}/errors",
            function.metric_errors(period=PERIOD, statistic="Sum"),
            threshold=1,
            description=ALARMS["errors"].description(
                route=name, receives=route.max_receive_count, log_group=pipeline.log_group.log_group_name, stack=stack
            ),
        )
        self._alarm(
            f"{name}/throttles",
            function.metric_throttles(period=PERIOD, statistic="Sum"),
            threshold=1,
            periods=THROTTLE_ALARM_PERIODS,
            description=ALARMS["throttles"].description(route=name, minutes=THROTTLE_ALARM_PERIODS * PERIOD_MINUTES),
        )
        self._alarm(
            f"{name}/queue-age",
            queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
            threshold=QUEUE_AGE_ALARM_SECONDS,
            description=ALARMS["queue-age"].description(
                route=name, minutes=QUEUE_AGE_ALARM_SECONDS // 60, function=function.function_name
            ),
        )
        for dead_letters in dead_letter_queues(pipeline):
            kind = kebab_case(dead_letters.node.id)
            if dead_letters.node.path == pipeline.dead_letter_queue.node.path:
                description = ALARMS["dead-letter-queue"].description(
                    route=name,
                    receives=route.max_receive_count,
                    stack=stack,
                    dead_letter_arn=dead_letters.queue_arn,
                    queue_arn=queue.queue_arn,
                )
            else:  # a FIFO route's standard queue for what EventBridge could not deliver to the FIFO queue
                archive = "project" if route.bus is Bus.PROJECT else "artifacts"
                description = ALARMS["delivery-dead-letter-queue"].description(route=name, stack=stack, archive=archive)
            self._alarm(
                f"{name}/{kind}",
                dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                threshold=1,
                description=description,
            )
        self.add_rule_alarms(name, pipeline.rule, route.bus, f"the {name} queue")

    def add_notification_alarms(self, rules: Mapping[str, events.Rule], dead_letter_queue: sqs.Queue) -> None:
        for construct_id, rule in rules.items():
            self.add_rule_alarms(f"notify-{kebab_case(construct_id)}", rule, Bus.PROJECT, "the alarm topic")
        self._alarm(
            "notifications/dead-letter-queue",
            dead_letter_queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            threshold=1,
            description=ALARMS["notifications-dead-letter-queue"].description(
                topic_arn=self.topic.topic_arn, queue_url=dead_letter_queue.queue_url
            ),
        )

    def add_rule_alarms(self, name: str, rule: events.Rule, bus: Bus, target: str) -> None:
        self._alarm(
            f"{name}/delivery-failed",
            rule_metric(rule, bus, self._project_bus, "FailedInvocations"),
            threshold=1,
            description=ALARMS["delivery-failed"].description(rule=name, target=target),
        )
        self._alarm(
            f"{name}/events-lost",
            rule_metric(rule, bus, self._project_bus, "InvocationsFailedToBeSentToDlq"),
            threshold=1,
            description=ALARMS["events-lost"].description(rule=name, target=target, stack=self._stack_name),
        )

    def _alarm(
        self, key: str, metric: cloudwatch.IMetric, *, threshold: float, description: str, periods: int = 1
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self._scope,
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
