"""One hop of the pipeline, built from one `functions.routing.Route`: rule -> queue (+ DLQ) -> function.

The rule's pattern, the queue's visibility timeout and receive count, the handler, timeout, memory and batch
size all come from the route, so this construct states none of them. The function's environment comes from
`functions.settings.function_environment`, the one place that names the variables.

A FIFO route (`route.fifo_group` set) gets FIFO queues instead: the queue and its dead-letter queue are FIFO with
content-based deduplication (EventBridge sends no deduplication id, so a FIFO target queue needs it), the rule puts
every event into the route's one message group, and Lambda's event source hands the function one batch of that
group at a time, in order. EventBridge refuses a FIFO queue as a target's dead-letter queue ("SQS FIFO is not
supported by Dead Letter Queues"), so events EventBridge cannot deliver go to a third, standard queue,
`delivery_dead_letter_queue`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Annotations, Aws, CfnCondition, Duration, Fn, Size, Stack, Token
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.project import FIFO_SUFFIX
from functions.routing import PROOF_TIMEOUT_SECONDS, VALIDATE, Route
from functions.settings import function_environment
from stacks.config import ConfigError
from stacks.constants import (
    DEAD_LETTER_RETENTION,
    LAMBDA_ARCHITECTURE,
    LAMBDA_RUNTIME,
    QUEUE_RETENTION,
    TARGET_MAX_EVENT_AGE,
    TARGET_RETRY_ATTEMPTS,
)
from stacks.constructs.event_buses import to_event_pattern
from stacks.constructs.function_code import FunctionCode
from stacks.constructs.mlflow_access import MlflowAccess, credentials_key_statement
from stacks.constructs.writer_access import kms_via_s3_statement, list_bucket_statement
from stacks.nag import acknowledge, acknowledge_tracing, wildcard_resource_finding
from stacks.route_access import access_for

SQS_QUEUE_NAME_MAX_LENGTH = 80
LAMBDA_ENVIRONMENT_MAX_BYTES = 4096
"""Lambda's limit on a function's environment variables, keys and values together (Lambda quotas:
https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). Over it, CreateFunction fails at deploy."""
UNRESOLVED_VALUE_MAX_BYTES = 256
"""What a value CloudFormation resolves at deploy time (a bucket name, a queue URL) is counted as: more than any of
them can be."""
CONTEXT_KEYS_IN_ENVIRONMENT = "experimentModelNames, modelNameTag, mlflowTrackingUri, mlflowRegistryUri"


def check_environment_size(environment: Mapping[str, str]) -> None:
    """Refuse at synth an environment Lambda would refuse at deploy; the message names the context keys to shorten."""
    size = sum(
        len(key.encode()) + len(value.encode()) + (UNRESOLVED_VALUE_MAX_BYTES if Token.is_unresolved(value) else 0)
        for key, value in environment.items()
    )
    if size > LAMBDA_ENVIRONMENT_MAX_BYTES:
        largest = max(environment, key=lambda k: len(environment[k]))
        raise ConfigError(
            f"the functions' environment variables would take up to {size} bytes, over Lambda's "
            f"{LAMBDA_ENVIRONMENT_MAX_BYTES}; the largest is {largest} ({len(environment[largest])} bytes). Shorten "
            f"the context values they come from ({CONTEXT_KEYS_IN_ENVIRONMENT})"
        )


def fifo_queue_name(stack_name: str, route_name: str, kind: str = "") -> str:
    """`<stack>-<route>[-<kind>].fifo`, shortened with a hash of the full name to SQS's 80 characters.

    FIFO queues are named explicitly: CloudFormation appends `.fifo` to the name it generates for an unnamed FIFO
    queue without shortening it first, so a long stack name made the deployment fail (aws/aws-cdk#11041).
    """
    base = "-".join(part for part in (stack_name, route_name, kind) if part)
    if len(base) + len(FIFO_SUFFIX) <= SQS_QUEUE_NAME_MAX_LENGTH:
        return f"{base}{FIFO_SUFFIX}"
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    keep = SQS_QUEUE_NAME_MAX_LENGTH - len(FIFO_SUFFIX) - len(digest) - 1
    return f"{base[:keep].rstrip('-_')}-{digest}{FIFO_SUFFIX}"


@dataclass(frozen=True)
class PipelineContext:
    """What every route's pipeline shares: the resources it may touch and the deployment's settings."""

    bucket: s3.IBucket
    key: kms.IKey | None
    """None: an existing bucket encrypted with SSE-S3 (no KMS permission needed)."""
    artifact_root_prefix: str
    artifact_prefixes: tuple[str, ...]
    project_bus: events.IEventBus
    idempotency_table: dynamodb.ITable
    code: FunctionCode
    tracking_uri: str
    registry_uri: str
    credentials_secret_arn: str
    model_name_tag: str
    experiment_model_names: Mapping[str, str] = field(default_factory=dict)
    credentials_kms_key_arn: str = ""
    """The customer managed key of the credentials secret (empty: aws/secretsmanager, which needs no grant)."""
    max_pending_seconds: int = 6 * 3600
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    tracing: bool = False
    snap_start: bool = True
    """SnapStart on published versions, for the functions whose settings allow it (see `RoutePipeline`)."""
    snap_start_condition: CfnCondition | None = None
    """With SnapStart: on only where this condition holds (a stack without a region; see `stacks.regions`)."""
    mlflow: MlflowAccess | None = None
    """SageMaker/SigV4 permissions, VPC placement, CA layer and MLflow client settings (None: none of them)."""
    proof_layers: Sequence[lambda_.ILayerVersion] = ()
    """With proofs on (context `proof`): the layer with numpy, pandas and uv, for the validate function only."""
    proof_index_url: str = ""
    proof_python_downloads: bool = False
    reference_datasets: Sequence[str] = ()
    """The reference datasets the policies name (keys under `datasets/`): with proofs on, the validate function may read
    exactly these objects, to score versions on them (`functions.domain.reference`)."""


SNAP_START_MAX_EPHEMERAL_STORAGE_MB = 512
"""SnapStart does not support more ephemeral storage than this (nor EFS or provisioned concurrency)."""


class RoutePipeline(Construct):
    """`dead_letter_queue`, `queue`, `rule`, `log_group`, `role`, `function` and its SQS event source.

    FIFO routes also have `delivery_dead_letter_queue` (standard), the rule target's dead-letter queue; for the
    other routes it is None and the target dead-letters into `dead_letter_queue`.

    With SnapStart (`snap_start`, unless the function needs more `/tmp` than SnapStart allows: the register
    function of a Unity Catalog deployment), the function's code and configuration are published as a version,
    `alias` ("live") points at it, and the event source mapping invokes the alias: Lambda snapshots the version's
    initialized environment when it is published and restores new containers from it. Otherwise `alias` is None and
    the mapping invokes the function (`$LATEST`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        route: Route,
        bus: events.IEventBus,
        context: PipelineContext,
        max_concurrency: int,
        ephemeral_storage_mb: int = 512,
    ):
        super().__init__(scope, construct_id)
        self.route = route
        self._ephemeral_storage_mb = ephemeral_storage_mb
        self._context = context
        self.dead_letter_queue = self._build_dead_letter_queue()
        self.queue = self._build_queue()
        self.delivery_dead_letter_queue = self._build_delivery_dead_letter_queue() if route.fifo else None
        self.rule = self._build_rule(bus)
        self.log_group = self._build_log_group()
        self.role = self._build_role()
        self.snap_start = context.snap_start and ephemeral_storage_mb <= SNAP_START_MAX_EPHEMERAL_STORAGE_MB
        self.function = self._build_function()
        self.alias = self._build_alias() if self.snap_start else None
        self.event_source_mapping = self._build_event_source(max_concurrency)
        self._acknowledge_findings()

    # --- queues and rule --------------------------------------------------------------------------------------------

    def _build_dead_letter_queue(self) -> sqs.Queue:
        return sqs.Queue(
            self,
            "DeadLetterQueue",
            retention_period=DEAD_LETTER_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            **self._fifo_properties("dlq"),  # a FIFO queue's dead-letter queue must be FIFO too
        )

    def _build_queue(self) -> sqs.Queue:
        return sqs.Queue(
            self,
            "Queue",
            visibility_timeout=Duration.seconds(self.route.visibility_timeout_seconds),
            retention_period=QUEUE_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=self.route.max_receive_count
            ),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            **self._fifo_properties(),
        )

    def _build_delivery_dead_letter_queue(self) -> sqs.Queue:
        """Standard: EventBridge dead-letters only into standard queues, whatever the target's type."""
        return sqs.Queue(
            self,
            "DeliveryDeadLetterQueue",
            retention_period=DEAD_LETTER_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )

    def _fifo_properties(self, kind: str = "") -> dict:
        if not self.route.fifo:
            return {}
        return {
            "fifo": True,
            # EventBridge sends no MessageDeduplicationId: a FIFO target must deduplicate on content. Every event has
            # its own id, so only a true duplicate (the same event within 5 minutes) is dropped.
            "content_based_deduplication": True,
            "queue_name": fifo_queue_name(Stack.of(self).stack_name, self.route.name, kind),
        }

    def _build_rule(self, bus: events.IEventBus) -> events.Rule:
        pattern = self.route.event_pattern(bucket_name=self._context.bucket.bucket_name)
        return events.Rule(
            self,
            "Rule",
            event_bus=bus,
            description=f"registry-autopilot {self.route.name}: {self.route.description}"[:512],
            event_pattern=to_event_pattern(pattern),
            targets=[
                targets.SqsQueue(
                    self.queue,
                    # FIFO: every event into the route's one group, so its function sees them one batch at a time.
                    message_group_id=self.route.fifo_group,
                    retry_attempts=TARGET_RETRY_ATTEMPTS,
                    max_event_age=TARGET_MAX_EVENT_AGE,
                    # Same body shape as the queue's own dead letters (the event), so one redrive tool serves both;
                    # a FIFO route's undeliverable events go to its standard delivery dead-letter queue instead.
                    dead_letter_queue=self.delivery_dead_letter_queue or self.dead_letter_queue,
                )
            ],
        )

    # --- function ---------------------------------------------------------------------------------------------------

    def _build_log_group(self) -> logs.LogGroup:
        return logs.LogGroup(self, "LogGroup", retention=self._context.log_retention)

    def _build_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            description=f"registry-autopilot {self.route.name} function",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        for statement in self._statements():
            role.add_to_policy(statement)
        return role

    def _statements(self) -> list[iam.PolicyStatement]:
        """The function's own permissions; the event source adds receive/delete on its queue."""
        ctx, access = self._context, access_for(self.route.name)
        statements = [
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        ]
        if access.read_artifacts:
            statements += [
                iam.PolicyStatement(
                    sid="ReadArtifacts",
                    # GetObjectVersion: the handler reads the exact version the event names.
                    actions=["s3:GetObject", "s3:GetObjectVersion"],
                    resources=[ctx.bucket.arn_for_objects(f"{prefix}/*") for prefix in ctx.artifact_prefixes],
                ),
                list_bucket_statement(ctx.bucket, ctx.artifact_prefixes),
                *([kms_via_s3_statement(ctx.key, ["kms:Decrypt"])] if ctx.key is not None else []),
            ]
        if self._proves() and ctx.reference_datasets:
            statements.append(
                iam.PolicyStatement(
                    sid="ReadReferenceDatasets",
                    # GetObjectVersion: both versions are scored on the dataset version the first HeadObject saw.
                    actions=["s3:GetObject", "s3:GetObjectVersion"],
                    resources=[ctx.bucket.arn_for_objects(key) for key in sorted(set(ctx.reference_datasets))],
                )
            )
        if access.publish_events:
            statements.append(
                iam.PolicyStatement(
                    sid="PublishProjectEvents", actions=["events:PutEvents"], resources=[ctx.project_bus.event_bus_arn]
                )
            )
        if access.idempotency:
            statements.append(
                iam.PolicyStatement(
                    sid="IdempotencyRecords",
                    actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    resources=[ctx.idempotency_table.table_arn],
                )
            )
        own_queues = [
            q.queue_arn
            for q, wanted in ((self.queue, access.requeue), (self.dead_letter_queue, access.dead_letter))
            if wanted
        ]
        if own_queues:
            statements.append(
                iam.PolicyStatement(sid="SendToOwnQueues", actions=["sqs:SendMessage"], resources=own_queues)
            )
        if access.mlflow_credentials and ctx.credentials_secret_arn:
            statements.append(
                iam.PolicyStatement(
                    sid="ReadMlflowCredentials",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[ctx.credentials_secret_arn],
                )
            )
            if ctx.credentials_kms_key_arn:
                statements.append(credentials_key_statement(ctx.credentials_kms_key_arn, ctx.credentials_secret_arn))
        if access.mlflow_credentials and ctx.mlflow is not None:
            statements += ctx.mlflow.statements(self.route.name)
        return statements

    def _build_function(self) -> lambda_.Function:
        ctx = self._context
        environment = function_environment(
            self.route,
            bucket=ctx.bucket.bucket_name,
            artifact_root_prefix=ctx.artifact_root_prefix,
            event_bus_name=ctx.project_bus.event_bus_name,
            idempotency_table=ctx.idempotency_table.table_name,
            queue_url=self.queue.queue_url,
            dead_letter_queue_url=self.dead_letter_queue.queue_url,
            tracking_uri=ctx.tracking_uri,
            registry_uri=ctx.registry_uri,
            credentials_secret_arn=ctx.credentials_secret_arn,
            model_name_tag=ctx.model_name_tag,
            experiment_model_names=dict(ctx.experiment_model_names),
            max_pending_seconds=ctx.max_pending_seconds,
            tracing=ctx.tracing,
            **(ctx.mlflow.environment if ctx.mlflow else {}),
            **self._proof_environment(),
        )
        check_environment_size(environment)
        function = lambda_.Function(
            self,
            "Function",
            description=self.route.description or f"registry-autopilot {self.route.name}",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler=self.route.handler,
            code=ctx.code.code,
            layers=[
                *ctx.code.layers,
                *(ctx.mlflow.route_layers(self.route.name) if ctx.mlflow else []),
                *self._proof_layers(),
            ],
            timeout=Duration.seconds(self.route.timeout_seconds),
            memory_size=self.route.memory_mb,
            ephemeral_storage_size=(
                Size.mebibytes(self._ephemeral_storage_mb) if self._ephemeral_storage_mb != 512 else None
            ),
            role=self.role,
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE if ctx.tracing else lambda_.Tracing.DISABLED,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if self.snap_start else None,
            environment=environment,
        )
        if self.snap_start and ctx.snap_start_condition is not None:
            # Off (no property) where the deployment's region has no SnapStart; the live alias works either way.
            function.node.default_child.add_property_override(
                "SnapStart",
                Fn.condition_if(ctx.snap_start_condition.logical_id, {"ApplyOn": "PublishedVersions"}, Aws.NO_VALUE),
            )
        if ctx.mlflow is not None:
            ctx.mlflow.place(function, self.role)
        return function

    def _proves(self) -> bool:
        return bool(self._context.proof_layers) and self.route.name == VALIDATE.name

    def _proof_layers(self) -> list[lambda_.ILayerVersion]:
        return list(self._context.proof_layers) if self._proves() else []

    def _proof_environment(self) -> dict[str, Any]:
        if not self._proves():
            return {}
        return {
            "proof": "uv",
            "proof_timeout_seconds": PROOF_TIMEOUT_SECONDS,
            "proof_index_url": self._context.proof_index_url,
            "proof_python_downloads": self._context.proof_python_downloads,
        }

    def _build_alias(self) -> lambda_.Alias:
        # CDK warns on every SnapStart function that only published versions are snapshotted: this one is.
        Annotations.of(self.function).acknowledge_warning(
            "@aws-cdk/aws-lambda:snapStartRequirePublish", "the route's `live` alias publishes each version"
        )
        return lambda_.Alias(self, "Live", alias_name="live", version=self.function.current_version)

    def _build_event_source(self, max_concurrency: int) -> lambda_.EventSourceMapping:
        # On a FIFO queue Lambda invokes at most min(message groups, max_concurrency) at once: one, for a FIFO route.
        # (Lambda has no batching window for FIFO queues; CDK refuses one.)
        window = self.route.max_batching_window_seconds
        target: lambda_.IFunction = self.alias or self.function
        target.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=self.route.batch_size,
                max_batching_window=Duration.seconds(window) if window else None,
                max_concurrency=max_concurrency,
                report_batch_item_failures=True,
            )
        )
        (mapping,) = (c for c in target.node.children if isinstance(c, lambda_.EventSourceMapping))
        return mapping

    # --- cdk-nag ----------------------------------------------------------------------------------------------------

    def _acknowledge_findings(self) -> None:
        ctx, access = self._context, access_for(self.route.name)
        acknowledge(
            self.dead_letter_queue,
            {
                "Serverless-SQSRedrivePolicy": "This is the terminal dead-letter queue of the route: a redrive policy on "
                "it would only move failed messages to yet another queue. Messages stay 14 days for inspection and "
                "redrive.",
            },
        )
        if self.delivery_dead_letter_queue is not None:
            reason = (
                "Dead-letter queue of the rule's target (EventBridge DeadLetterConfig): cdk-nag only recognises queues "
                "named in another queue's redrive policy. EventBridge dead-letters only into standard queues, so this "
                "FIFO route needs it beside its FIFO dead-letter queue. Kept 14 days for inspection and redrive."
            )
            acknowledge(
                self.delivery_dead_letter_queue,
                {"AwsSolutions-SQS3": reason, "Serverless-SQSRedrivePolicy": reason},
            )
        function_resource = self.function.node.default_child
        acknowledge(
            function_resource,
            {
                "Serverless-LambdaDLQ": "The function's only trigger is its SQS event source mapping, which invokes "
                "synchronously; it has no resource-based policy, so no service invokes it asynchronously and a "
                "function DLQ would stay empty. Failed messages reach the queue's dead-letter queue by redrive.",
            },
        )
        acknowledge(
            self.event_source_mapping,
            {
                "Serverless-LambdaEventSourceMappingDestination": "On-failure destinations are not supported for SQS "
                "event source mappings; the queue's redrive policy to its dead-letter queue is the failure destination.",
            },
        )
        if access.read_artifacts:
            reason = (
                "Object-level S3 actions can only be scoped by key: the wildcard is the watched prefix ({}/), not "
                "the bucket. Read-only (GetObject/GetObjectVersion)."
            )
            acknowledge(
                self.role,
                {
                    wildcard_resource_finding(self, ctx.bucket.arn_for_objects(f"{prefix}/*")): reason.format(prefix)
                    for prefix in ctx.artifact_prefixes
                },
            )
        acknowledge_tracing(self.role, function_resource, tracing=ctx.tracing, carried_id="the correlation id")
