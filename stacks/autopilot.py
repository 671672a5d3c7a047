"""`RegistryAutopilot`: the whole pipeline as one construct, for the project's own stack or a stack of your app.

It composes the constructs of `stacks/constructs/` (bucket, buses, one pipeline per route, monitoring), tags them,
writes the stack outputs the command-line tools read (`stacks.outputs`), and exposes the resources a host app may wire
more to (`bus`, `queues`, `dead_letter_queues`, `functions`, `topic`, `writer_policy`, `archives`, ...).

Its props are a `RegistryConfig` (the context keys of `cdk.json` in snake case, checked when it is built), the
folder of validation policies, optionally an existing bucket and its key as constructs (`bucket`, `bucket_key`: the
same as `artifactBucketName`/`artifactBucketKeyArn`, never owned), and optionally a permissions boundary and a
role-name prefix for every IAM role it creates (`stacks.iam_rules`). Resource names (bus, key alias, alarm names, queue names) start with the name of the
stack it is in; `stack_name` in the config names the project's own stack (`stacks.registry_stack`) only. One per
stack: its outputs have fixed names.

Logical ids: the project's stack builds it with the id "Default", which CDK leaves out of the logical ids of
everything under it (`makeUniqueId` in aws-cdk-lib's `core/lib/private/uniqueid.ts` drops path components named
"Default", its `HIDDEN_ID`), so the template of a stack deployed before this construct existed is unchanged and an
upgrade replaces nothing. Under any other id, the ids carry it.

A bucket in another account (`artifactBucketAccount`): its events reach the project bus through the forwarder stack
of that account (`stacks.forwarder_stack`), so the register rule sits on the project bus (`functions.routing.
receiving_forwarded_events`), the bus's resource policy lets that forwarder rule, and only it, put events
(`stacks.cross_account`), the forwarded S3 events are archived (and recorded) on the project bus, and the bucket and
key policy statements the bucket's owner adds are outputs, with the roles' real ARNs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from aws_cdk import (
    Annotations,
    Aws,
    CfnCondition,
    CfnOutput,
    CfnResource,
    Fn,
    ICfnConditionExpression,
    Stack,
    Tags,
    Token,
)
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.domain.ladder_policy import rung_credentials
from functions.domain.policy import PolicySet
from functions.models.mlflow_backend import SAGEMAKER_TRACKING_SERVER
from functions.project import PROJECT
from functions.routing import (
    PROOF_EPHEMERAL_STORAGE_MB,
    ROUTES,
    VALIDATE,
    Route,
    proving,
    receiving_forwarded_events,
)
from stacks import outputs
from stacks.config import (
    CONTEXT_KEYS,
    PLACEHOLDER_TRACKING_URI,
    ConfigError,
    RegistryConfig,
    SnapStart,
    check_bucket_account,
)
from stacks.constants import DEFAULT_ROUTE_MAX_CONCURRENCY, POLICIES_DIR, pascal_case
from stacks.constructs.artifact_bucket import ArtifactBucket, ImportedArtifactBucket
from stacks.constructs.bucket_event_bridge import BucketEventBridge
from stacks.constructs.event_buses import EventBuses
from stacks.constructs.function_code import DependencyLayout, FunctionCode
from stacks.constructs.idempotency_table import IdempotencyTable
from stacks.constructs.mlflow_access import MlflowAccess
from stacks.constructs.monitoring import Monitoring
from stacks.constructs.recorder import Recorder
from stacks.constructs.route_pipeline import PipelineContext, RoutePipeline
from stacks.constructs.webhook import WebhookReceiver
from stacks.constructs.writer_access import WriterAccess
from stacks.cross_account import project_bus_name, project_side_policies, reading_routes
from stacks.iam_rules import apply_iam_rules, check_role_name_prefix
from stacks.nag import acknowledge
from stacks.regions import FUNCTION_URL_REGIONS, SNAP_START_REGIONS

PLACEHOLDER_WARNING_ID = "registry-autopilot:placeholderTrackingUri"
INSECURE_TLS_WARNING_ID = "registry-autopilot:insecureTls"

# The Lambda function CDK adds for `event_bridge_enabled=True` (Custom::S3BucketNotifications); its id is fixed.
_NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"

# fmt: off
_LOG_RETENTION = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS, 120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS, 180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1096: logs.RetentionDays.THREE_YEARS, 1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS, 2557: logs.RetentionDays.SEVEN_YEARS, 2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}
# fmt: on

_MAX_OR_CONDITIONS = 10
"""Fn::Or takes 2 to 10 conditions (CloudFormation's condition functions reference)."""


def region_condition(scope: Construct, construct_id: str, regions: Iterable[str]) -> CfnCondition:
    """A condition true when the stack is deployed in one of `regions` (nested Fn::Or, 10 conditions at most each)."""
    expressions: list[ICfnConditionExpression] = [Fn.condition_equals(Aws.REGION, r) for r in sorted(regions)]
    while len(expressions) > 1:
        groups = [expressions[i : i + _MAX_OR_CONDITIONS] for i in range(0, len(expressions), _MAX_OR_CONDITIONS)]
        expressions = [group[0] if len(group) == 1 else Fn.condition_or(*group) for group in groups]
    return CfnCondition(scope, construct_id, expression=expressions[0])


def _check_proof_policies(config: RegistryConfig, policies: PolicySet) -> None:
    """A policy that asks for a proof stops the synth of a stack that runs none: its versions could never pass."""
    if config.proof:
        return
    asking = sorted(loaded.file for loaded in policies.policies.values() if loaded.policy.proof.enabled)
    if asking:
        raise ConfigError(
            f"policies/{asking[0]} asks for `proof: smoke`, but the stack proves no model: set context key "
            f"{CONTEXT_KEYS['proof']!r} (with {CONTEXT_KEYS['proof_layer_arn']!r}) or remove the key from "
            f'{", ".join(asking)} (docs/policies-and-aliases.md, "Proving a model")'
        )


def ladder_tracking_servers(policies: PolicySet) -> list[str]:
    """The SageMaker tracking servers (ARNs) the policies' ladders name as a rung's `registry_uri`: the aliases
    function gets the registry actions on each (`MlflowAccess`), and nothing on any other."""
    rungs = [rung for ladder in policies.ladders for rung in ladder.environments]
    return sorted(
        {r.registry_uri for r in rungs if r.registry_uri and SAGEMAKER_TRACKING_SERVER.fullmatch(r.registry_uri)}
    )


def reference_datasets(policies: PolicySet) -> list[str]:
    """The dataset keys the policies' `reference:` name: the validate function reads these objects and no other."""
    return sorted({p.policy.reference.dataset for p in policies.policies.values() if p.policy.reference is not None})


def check_policies_dir(policies_dir: Path | str) -> Path:
    """The folder must exist; its policies are parsed by `FunctionCode` (a broken one stops the synth there)."""
    path = Path(policies_dir)
    if not path.is_dir():
        raise ConfigError(f"prop 'policies_dir' must be a folder of validation policies; {str(path)!r} is none")
    return path.resolve()


def _bind_region(config: RegistryConfig, stack: Stack) -> RegistryConfig:
    """A host stack bound to a region gives the construct that region (so the synth checks region-bound features)."""
    if Token.is_unresolved(stack.region):
        return config
    if config.region and config.region != stack.region:
        raise ConfigError(
            f"prop 'region' (context key 'region') is {config.region!r} but the stack is in {stack.region!r}"
        )
    return replace(config, region=stack.region)


def _check_bucket_props(config: RegistryConfig, bucket: s3.IBucket | None, bucket_key: kms.IKey | None) -> None:
    """`bucket`/`bucket_key` are the construct forms of `artifactBucketName`/`artifactBucketKeyArn`: not both."""
    if bucket_key is not None and bucket is None:
        raise ConfigError("prop 'bucket_key' is the key of an existing bucket: give the bucket too (prop 'bucket')")
    if bucket_key is not None and config.artifact_bucket_key_arn:
        raise ConfigError(
            "props 'bucket_key' and 'artifact_bucket_key_arn' (context key 'artifactBucketKeyArn') name the same "
            "key: give one"
        )
    name = bucket.bucket_name if bucket is not None else ""
    if name and config.artifact_bucket_name and not Token.is_unresolved(name) and name != config.artifact_bucket_name:
        raise ConfigError(
            f"prop 'bucket' is {name!r} but prop 'artifact_bucket_name' (context key 'artifactBucketName') is "
            f"{config.artifact_bucket_name!r}: give one, or the same bucket"
        )


class RegistryAutopilot(Construct):
    """MLflow models written to S3 registered, validated and promoted: bucket, buses, one pipeline per route."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RegistryConfig | None = None,
        policies_dir: Path | str = POLICIES_DIR,
        bucket: s3.IBucket | None = None,
        bucket_key: kms.IKey | None = None,
        permissions_boundary: iam.IManagedPolicy | str | None = None,
        role_name_prefix: str | None = None,
        layout: DependencyLayout = DependencyLayout.LAYER,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.config = config = _bind_region(config if config is not None else RegistryConfig(), stack)
        _check_bucket_props(config, bucket, bucket_key)
        if not Token.is_unresolved(stack.account):
            check_bucket_account(config, stack.account)
        self.forwarded = config.bucket_in_another_account
        """The bucket is in another account: its events come forwarded to the project bus."""
        self.policies_dir = check_policies_dir(policies_dir)
        role_name_prefix = check_role_name_prefix(role_name_prefix)
        self.name = stack.stack_name
        """What the construct's resource names start with: the name of the stack it is in."""
        stack_children_before = {child.node.id for child in stack.node.children}
        # Without a region, SnapStart is on only where the deployment's region has it (stacks.regions).
        self.snap_start_condition = (
            region_condition(self, "SnapStartAvailable", SNAP_START_REGIONS)
            if config.snap_start_mode is SnapStart.WHERE_AVAILABLE
            else None
        )
        # An existing bucket (artifactBucketName, or the `bucket` prop) is imported and never owned; see
        # docs/deploying.md.
        imports_bucket = config.imports_bucket or bucket is not None
        self.artifacts: ArtifactBucket | ImportedArtifactBucket = (
            ImportedArtifactBucket(
                self,
                "Artifacts",
                bucket_name=config.artifact_bucket_name,
                key_arn=config.artifact_bucket_key_arn,
                account=config.artifact_bucket_account,
                bucket=bucket,
                key=bucket_key,
            )
            if imports_bucket
            else ArtifactBucket(
                self,
                "Artifacts",
                key_alias=f"alias/{self.name}-artifacts",
                noncurrent_version_expiration_days=config.noncurrent_version_expiration_days,
            )
        )
        self.writer = WriterAccess(
            self,
            "Writer",
            bucket=self.artifacts.bucket,
            key=self.artifacts.key,
            artifact_root_prefix=config.artifact_root_prefix,
            databricks_instance_profile=config.databricks_instance_profile,
        )
        self.buses = EventBuses(
            self,
            "EventBuses",
            project_bus_name=project_bus_name(self.name),
            bucket_name=self.artifacts.bucket.bucket_name,
            archive_retention_days=config.archive_retention_days,
            forwarded=self.forwarded,
        )
        self.idempotency = IdempotencyTable(self, "Idempotency")
        self.code = FunctionCode(self, "FunctionCode", layout=layout, policies_dir=self.policies_dir)
        _check_proof_policies(config, self.code.policies)
        self.bucket_event_bridge = (
            BucketEventBridge(
                self,
                "BucketEventBridge",
                bucket=self.artifacts.bucket,
                code=self.code,
                log_retention=_LOG_RETENTION[config.log_retention_days],
            )
            if imports_bucket and config.artifact_bucket_event_bridge == "enable"
            else None
        )
        self.mlflow = MlflowAccess(
            self,
            "MlflowAccess",
            config=config,
            ladder_tracking_servers=ladder_tracking_servers(self.code.policies),
            ladder_credentials=rung_credentials(self.code.policies.ladders),
        )
        context = self._pipeline_context()
        self.pipelines = {route.name: self._build_pipeline(route, context) for route in ROUTES}
        self.forwarded_events_policy = self._accept_forwarded_events() if self.forwarded else None
        self.recorder = (
            Recorder(
                self,
                "Recorder",
                artifact_events_bus=self.buses.project_bus if self.forwarded else self.buses.default_bus,
                project_bus=self.buses.project_bus,
                bucket_name=self.artifacts.bucket.bucket_name,
                retention=_LOG_RETENTION[config.log_retention_days],
            )
            if config.recorder
            else None
        )
        self.function_url_condition: CfnCondition | None = None
        self.webhook = self._build_webhook() if config.webhooks else None
        self._acknowledge_notifications_handler()
        self._warn_about_placeholder_tracking_uri()
        self._warn_about_insecure_tls()
        self._add_outputs()
        self._add_replay_outputs()
        self._add_tags(self)
        # Last, so it sees every pipeline: dashboard, alarms, notifications (and their outputs).
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            pipelines=self.pipelines,
            project_bus=self.buses.project_bus,
            alarm_email=config.alarm_email,
        )
        # CDK's own singletons this construct caused (the bucket's notifications handler) live in the stack.
        caused = [
            child
            for child in stack.node.children
            if child.node.id not in stack_children_before and child is not self and isinstance(child, Construct)
        ]
        for singleton in caused:
            self._add_tags(singleton)
        self.permissions_boundary = apply_iam_rules(
            self, others=caused, permissions_boundary=permissions_boundary, role_name_prefix=role_name_prefix
        )
        self._expose()

    def _expose(self) -> None:
        """The resources a host app may wire more to, by plain names."""
        self.bucket: s3.IBucket = self.artifacts.bucket
        self.bucket_key: kms.IKey | None = self.artifacts.key
        """None: an existing bucket encrypted with SSE-S3 or the AWS managed aws/s3 key."""
        self.bus: events.IEventBus = self.buses.project_bus
        self.archives: Mapping[str, events.Archive] = {
            "artifact-events": self.buses.artifact_events_archive,
            "project-events": self.buses.project_bus_archive,
        }
        self.queues: Mapping[str, sqs.IQueue] = {name: p.queue for name, p in self.pipelines.items()}
        self.dead_letter_queues: Mapping[str, sqs.IQueue] = {
            name: p.dead_letter_queue for name, p in self.pipelines.items()
        }
        self.functions: Mapping[str, lambda_.IFunction] = {name: p.function for name, p in self.pipelines.items()}
        self.topic: sns.ITopic = self.monitoring.topic
        self.writer_policy: iam.IManagedPolicy = self.writer.policy

    def _pipeline_context(self) -> PipelineContext:
        config = self.config
        return PipelineContext(
            bucket=self.artifacts.bucket,
            key=self.artifacts.key,
            artifact_root_prefix=config.artifact_root_prefix,
            artifact_prefixes=self.writer.prefixes,
            project_bus=self.buses.project_bus,
            idempotency_table=self.idempotency.table,
            code=self.code,
            tracking_uri=config.effective_tracking_uri,
            registry_uri=config.mlflow_registry_uri,
            credentials_secret_arn=config.mlflow_credentials_secret_arn,
            credentials_kms_key_arn=config.mlflow_credentials_kms_key_arn,
            model_name_tag=config.model_name_tag,
            experiment_model_names=config.experiment_model_names,
            max_pending_seconds=config.max_pending_seconds,
            log_retention=_LOG_RETENTION[config.log_retention_days],
            tracing=config.tracing,
            snap_start=config.snap_start_mode is not SnapStart.OFF,
            snap_start_condition=self.snap_start_condition,
            mlflow=self.mlflow,
            proof_layers=self._proof_layers(),
            proof_index_url=config.proof_index_url,
            proof_python_downloads=config.proof_python_downloads,
            reference_datasets=reference_datasets(self.code.policies),
        )

    def _proof_layers(self) -> list[lambda_.ILayerVersion]:
        if not self.config.proof:
            return []
        return [lambda_.LayerVersion.from_layer_version_arn(self, "ProofLayer", self.config.proof_layer_arn)]

    def _build_pipeline(self, route: Route, context: PipelineContext) -> RoutePipeline:
        # `register` calls MLflow for every upload: its concurrency is the knob that protects the MLflow server.
        concurrency = (
            self.config.register_max_concurrency if route.name == "register" else DEFAULT_ROUTE_MAX_CONCURRENCY
        )
        # `register` may copy whole models (Unity Catalog): its timeout and disk can be sized from context.
        storage = self.config.effective_register_ephemeral_storage_mb if route.name == "register" else 512
        timeout = self.config.effective_register_timeout_seconds if route.name == "register" else None
        memory = self.config.effective_register_memory_mb if route.name == "register" else None
        if self.forwarded:
            route = receiving_forwarded_events(route)  # register: its rule on the project bus, same pattern
        if timeout:
            route = replace(route, timeout_seconds=timeout)
        if memory:
            route = replace(route, memory_mb=memory)
        if (
            route.name == VALIDATE.name and self.config.proof
        ):  # proofs run in the validate function (docs/architecture.md)
            route, storage = proving(route), PROOF_EPHEMERAL_STORAGE_MB
        return RoutePipeline(
            self,
            f"{pascal_case(route.name)}Pipeline",
            route=route,
            bus=self.buses.bus(route.bus),
            context=context,
            max_concurrency=concurrency,
            ephemeral_storage_mb=storage,
        )

    def _cross_account_policies(self) -> dict:
        """The bus, bucket and key policies of a bucket in another account, with this stack's bus and roles."""
        stack = Stack.of(self)
        return project_side_policies(
            project_bus_arn=stack.format_arn(
                service="events", resource="event-bus", resource_name=project_bus_name(self.name)
            ),
            bucket_account=self.config.artifact_bucket_account,
            bucket_name=self.artifacts.bucket.bucket_name,
            prefixes=self.writer.prefixes,
            role_arns={name: self.pipelines[name].role.role_arn for name in reading_routes()},
            dataset_keys=reference_datasets(self.code.policies) if self.config.proof else (),
        )

    def _accept_forwarded_events(self) -> events.CfnEventBusPolicy:
        """The project bus's resource policy: the bucket account's forwarder rule, and only it, may put events."""
        policies = self._cross_account_policies()
        (statement,) = policies["projectBusPolicy"]["Statement"]
        policy = events.CfnEventBusPolicy(
            self.buses,
            "ForwarderPolicy",
            event_bus_name=self.buses.project_bus.event_bus_name,
            statement_id=statement["Sid"],
            statement=statement,
        )
        # The bucket's owner adds these (a role policy alone does not reach into another account).
        stack = Stack.of(self)
        self._output(
            outputs.ARTIFACT_BUCKET_ACCOUNT,
            self.config.artifact_bucket_account,
            "The account that owns the artifact bucket (ops preflight --stack checks it does)",
        )
        self._output(
            outputs.ARTIFACT_BUCKET_POLICY,
            stack.to_json_string(policies["bucketPolicy"]),
            "Add to the bucket policy of the artifact bucket (bucket account)",
        )
        if self.artifacts.key is not None:
            self._output(
                outputs.ARTIFACT_BUCKET_KEY_POLICY_STATEMENT,
                stack.to_json_string(policies["keyPolicyStatement"]),
                "Add to the key policy of the bucket's SSE-KMS key (bucket account)",
            )
        return policy

    def _build_webhook(self) -> WebhookReceiver:
        webhook = WebhookReceiver(
            self,
            "Webhook",
            bucket_name=self.artifacts.bucket.bucket_name,
            project_bus=self.buses.project_bus,
            idempotency_table=self.idempotency.table,
            code=self.code,
            log_retention=_LOG_RETENTION[self.config.log_retention_days],
            tracing=self.config.tracing,
            reserved_concurrency=self.config.webhook_reserved_concurrency,
        )
        if self.config.webhooks_where_available:
            # Without a region the synth cannot refuse a region lacking function URLs (AWS::Lambda::Url): every
            # webhook resource (and its outputs) exists only where they do, instead of failing the whole deployment.
            self.function_url_condition = region_condition(self, "FunctionUrlsAvailable", FUNCTION_URL_REGIONS)
            for construct in webhook.node.find_all():
                if isinstance(construct, CfnResource):
                    construct.cfn_options.condition = self.function_url_condition
            Annotations.of(self).add_info(
                "webhooks=true without a region: the webhook endpoint is created only in regions with Lambda function "
                "URLs (condition FunctionUrlsAvailable); set -c region=<region> to have the synth check yours."
            )
        return webhook

    def _acknowledge_notifications_handler(self) -> None:
        handler = Stack.of(self).node.try_find_child(_NOTIFICATIONS_HANDLER_ID)
        if handler is None:  # pragma: no cover - CDK renamed it: the nag test will show the findings
            return
        acknowledge(
            handler,
            {
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]": "CDK's own BucketNotificationsHandler (it applies the bucket's "
                "EventBridge notification setting during deployments); CDK creates its role with this AWS managed "
                "policy (CloudWatch Logs only) and offers no way to replace it.",
            },
        )

    def _warn_about_placeholder_tracking_uri(self) -> None:
        if self.config.uses_placeholder_tracking_uri:
            Annotations.of(self).add_warning_v2(
                PLACEHOLDER_WARNING_ID,
                f"mlflowTrackingUri is not set: the functions get {PLACEHOLDER_TRACKING_URI} and cannot register "
                "anything. Deploy with -c mlflowTrackingUri=<your MLflow URL>; `cdk deploy --strict` refuses to deploy while this warning stands.",
            )

    def _warn_about_insecure_tls(self) -> None:
        if self.config.mlflow_insecure_tls:
            Annotations.of(self).add_warning_v2(
                INSECURE_TLS_WARNING_ID,
                "mlflowInsecureTls=true: the functions do not verify the MLflow server's TLS certificate, so anyone on "
                "the path can read the credentials and forge answers. Prefer mlflowCaBundle with the server's CA. "
                "`cdk deploy --strict` refuses to deploy while this warning stands.",
            )

    def _add_outputs(self) -> None:
        bucket = self.artifacts.bucket
        self._output(outputs.BUCKET_NAME, bucket.bucket_name, "The artifact bucket")
        self._output(
            outputs.ARTIFACT_ROOT_URI,
            f"s3://{bucket.bucket_name}/{self.config.artifact_root_prefix}",
            "MLflow artifact root (mlflow server --default-artifact-root / experiment artifact_location)",
        )
        if self.artifacts.imported:
            self._output(outputs.IMPORTED_BUCKET_NAME, bucket.bucket_name, "The existing bucket (never owned)")
            if self.artifacts.key is not None:
                self._output(outputs.ARTIFACT_BUCKET_KEY_ARN, self.artifacts.key.key_arn, "The bucket's SSE-KMS key")
        self._output("WriterPolicyArn", self.writer.policy.managed_policy_arn, "Attach to training-job roles")
        self._output(outputs.EVENT_BUS_NAME, self.buses.project_bus.event_bus_name, "The project's event bus")
        for name, pipeline in self.pipelines.items():
            self._output(outputs.queue_url(name), pipeline.queue.queue_url, f"The {name} queue")
            self._output(
                outputs.dead_letter_queue_url(name),
                pipeline.dead_letter_queue.queue_url,
                f"The {name} dead-letter queue",
            )
            if pipeline.delivery_dead_letter_queue is not None:
                self._output(
                    f"{pascal_case(name)}DeliveryDeadLetterQueueUrl",
                    pipeline.delivery_dead_letter_queue.queue_url,
                    f"Events EventBridge could not deliver to the {name} FIFO queue",
                )
        if self.webhook is not None:
            for output in (
                self._output("WebhookUrl", self.webhook.url.url, "MLflow webhook URL (create_webhook(url=...))"),
                self._output("WebhookSecretArn", self.webhook.secret.secret_arn, "The webhook's HMAC secret"),
            ):
                output.condition = self.function_url_condition
        if self.writer.instance_profile is not None:
            self._output(
                "DatabricksInstanceProfileArn",
                self.writer.instance_profile.instance_profile_arn,
                "Register in Databricks (Settings > Security > Instance profiles)",
            )

    def _add_replay_outputs(self) -> None:
        """What `python -m replay archive|send|record --stack NAME` looks up (names in `stacks.outputs`)."""
        buses = self.buses
        self._output(
            outputs.ARTIFACT_EVENTS_ARCHIVE_NAME,
            buses.artifact_events_archive.archive_name,
            "Archive of the bucket's S3 events (" + ("forwarded, project bus)" if self.forwarded else "default bus)"),
        )
        self._output(
            outputs.PROJECT_EVENTS_ARCHIVE_NAME,
            buses.project_bus_archive.archive_name,
            "Archive of every project event",
        )
        if self.recorder is not None:
            self._output(
                outputs.RECORDER_LOG_GROUP_NAME,
                self.recorder.log_group.log_group_name,
                "Recorded events (replay record)",
            )
        for name, pipeline in self.pipelines.items():
            self._output(outputs.rule_arn(name), pipeline.rule.rule_arn, f"The {name} rule (replay archive --rule)")

    def _output(self, logical_id: str, value: str, description: str) -> CfnOutput:
        output = CfnOutput(self, logical_id, value=value, description=description)
        output.override_logical_id(logical_id)
        return output

    def _add_tags(self, scope: Construct) -> None:
        Tags.of(scope).add("project", PROJECT)
        Tags.of(scope).add("stack", self.name)
