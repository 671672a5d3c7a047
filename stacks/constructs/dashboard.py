"""The pipeline's CloudWatch dashboard: the alarms on top, then per route the function (invocations, errors,
throttles, duration), the queue (depth, oldest message), the dead letters, then the business metrics
`functions.metrics` lists for the route; notifications sent and failed at the bottom.

Built in the scope it is given (the monitoring construct), so the logical id stays the one deployed before this module
was split off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.metrics import BATCH_METRICS, BUSINESS_METRICS, BusinessMetric, Unit, service_name
from functions.routing import Bus, Route
from functions.settings import METRICS_NAMESPACE
from stacks.alarms import QUEUE_AGE_ALARM_SECONDS, RUNBOOK
from stacks.constructs.alerting import PERIOD, dead_letter_queues, kebab_case, rule_metric
from stacks.constructs.route_pipeline import RoutePipeline


class PipelineDashboard:
    """`dashboard`, built in `scope`."""

    def __init__(
        self,
        scope: Construct,
        *,
        pipelines: Mapping[str, RoutePipeline],
        alarms: Iterable[cloudwatch.IAlarm],
        project_bus: events.IEventBus,
        notification_rules: Mapping[str, events.Rule],
        notification_dead_letter_queue: sqs.IQueue,
    ):
        self._project_bus = project_bus
        self._notification_rules = notification_rules
        self._notification_dead_letter_queue = notification_dead_letter_queue
        stack_name = Stack.of(scope).stack_name
        dashboard = cloudwatch.Dashboard(
            scope, "Dashboard", dashboard_name=stack_name, default_interval=Duration.hours(6)
        )
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {stack_name}\nOne row per route: its function, its queue and its dead letters, "
                f"then what it did (business metrics). Every alarm says what to do; the runbook ({RUNBOOK}) says more.",
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(alarms=list(alarms), title="Alarms", width=24, height=6))
        for name, pipeline in pipelines.items():
            dashboard.add_widgets(*self._operational_widgets(name, pipeline))
            dashboard.add_widgets(*self._business_widgets(name, pipeline.route))
        dashboard.add_widgets(*self._notification_widgets())
        self.dashboard = dashboard

    def _rule_metric(self, rule: events.Rule, bus: Bus, metric_name: str) -> cloudwatch.Metric:
        return rule_metric(rule, bus, self._project_bus, metric_name)

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
        rules = self._notification_rules.items()
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
                    self._notification_dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum"
                    )
                ],
                width=12,
            ),
        ]
