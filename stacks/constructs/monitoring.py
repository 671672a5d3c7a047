"""The operator's view of the pipeline: one construct that holds the alarm topic and its alarms
(`stacks/constructs/alerting.py`), the notification rules (`stacks/constructs/notifications.py`) and the dashboard
(`stacks/constructs/dashboard.py`), and adds the `AlarmTopicArn` and `DashboardName` outputs.

Every resource is a direct child of this construct, whichever module builds it, so that the logical ids stay those
of the stacks deployed when it was one module. The alarms' texts are in `stacks/alarms.py`.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnOutput
from aws_cdk import aws_events as events
from constructs import Construct

from stacks.constructs.alerting import Alerting
from stacks.constructs.dashboard import PipelineDashboard
from stacks.constructs.notifications import Notifications, build_notification_dead_letter_queue
from stacks.constructs.route_pipeline import RoutePipeline


class Monitoring(Construct):
    """`key`, `topic`, `notification_rules`, `notification_role`, `notification_dead_letter_queue`, `alarms` (by
    `<route>/<what>`), `dashboard`."""

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
        self.notification_dead_letter_queue = build_notification_dead_letter_queue(self)
        alerting = Alerting(
            self,
            project_bus=project_bus,
            alarm_email=alarm_email,
            email_dead_letter_queue=self.notification_dead_letter_queue,
        )
        self.key, self.topic, self.alarms = alerting.key, alerting.topic, alerting.alarms
        notifications = Notifications(
            self,
            project_bus=project_bus,
            topic=self.topic,
            key=self.key,
            dead_letter_queue=self.notification_dead_letter_queue,
        )
        self.notification_role, self.notification_rules = notifications.role, notifications.rules
        for name, pipeline in pipelines.items():
            alerting.add_route_alarms(name, pipeline)
        alerting.add_notification_alarms(self.notification_rules, self.notification_dead_letter_queue)
        self.dashboard = PipelineDashboard(
            self,
            pipelines=pipelines,
            alarms=self.alarms.values(),
            project_bus=project_bus,
            notification_rules=self.notification_rules,
            notification_dead_letter_queue=self.notification_dead_letter_queue,
        ).dashboard
        for logical_id, value, description in (
            ("AlarmTopicArn", self.topic.topic_arn, "Alarms and notifications (subscribe a pager or chat here)"),
            ("DashboardName", self.dashboard.dashboard_name, "The pipeline's CloudWatch dashboard"),
        ):
            CfnOutput(self, logical_id, value=value, description=description).override_logical_id(logical_id)
