"""`RegistryAutopilot` as a construct in a platform team's own app: beside the host's resources, checked by cdk-nag,
with typed props checked when it is built, a permissions boundary and a role-name prefix on every role it creates,
and its resources exposed for the host to wire to."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from functions.domain.policy import PolicyError
from functions.routing import ROUTES
from stacks.autopilot import RegistryAutopilot
from stacks.bundling import LocalPythonBundler
from stacks.config import ConfigError, RegistryConfig
from stacks.constants import POLICIES_DIR
from stacks.iam_rules import ROLE_NAME_MAX
from stacks.nag import acknowledge
from tests.infrastructure.conftest import NAG_PACKS, TRACKING_URI, cdk_json_context

HOST_REGION = "eu-west-1"
BOUNDARY_ARN = "arn:aws:iam::123456789012:policy/platform-boundary"
ROLE_NAME_PREFIX = "mlplatform-"
# Every role the construct can create: route roles, the webhook, Databricks' instance profile, CDK's handler.
HOST_CONFIG = RegistryConfig(
    mlflow_tracking_uri=TRACKING_URI,
    webhooks=True,
    recorder=True,
    databricks_instance_profile=True,
    alarm_email="oncall@example.com",
)


@dataclass(frozen=True)
class ForeignApp:
    stack: Stack
    autopilot: RegistryAutopilot
    host_queue: sqs.Queue
    host_bucket: s3.Bucket
    template: dict[str, Any]
    report: dict[str, Any]

    def logical_id(self, construct: Any) -> str:
        resource = getattr(construct.node, "default_child", None) or construct
        return self.stack.resolve(resource.logical_id)

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}


def _host_resources(stack: Stack) -> tuple[sqs.Queue, sqs.Queue, s3.Bucket]:
    """What a platform team's stack already holds: a queue of its own (with its DLQ) and a bucket of its own."""
    dead_letters = sqs.Queue(stack, "PlatformDeadLetters", enforce_ssl=True, retention_period=Duration.days(14))
    queue = sqs.Queue(
        stack,
        "PlatformQueue",
        enforce_ssl=True,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=3),
    )
    acknowledge(
        dead_letters,
        {"Serverless-SQSRedrivePolicy": "The host's dead-letter queue is the end of the line: nothing redrives it."},
    )
    private = {
        "encryption": s3.BucketEncryption.S3_MANAGED,
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "enforce_ssl": True,
        "removal_policy": RemovalPolicy.RETAIN,
    }
    logs = s3.Bucket(stack, "PlatformLogs", **private)
    bucket = s3.Bucket(
        stack,
        "PlatformBucket",
        versioned=True,
        server_access_logs_bucket=logs,
        server_access_logs_prefix="p/",
        **private,
    )
    return queue, dead_letters, bucket


@pytest.fixture(scope="module")
def foreign_app(tmp_path_factory: pytest.TempPathFactory) -> ForeignApp:
    # A platform team's app: its own stack (bound to a region) with its own queue and bucket, the construct inside
    # under an id of its choosing, both cdk-nag packs on the whole app (the synth raises on any finding).
    outdir = tmp_path_factory.mktemp("foreign-cdk.out")
    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": []}, outdir=str(outdir))
    stack = Stack(app, "PlatformTools", env=Environment(region=HOST_REGION))
    host_queue, host_dead_letters, host_bucket = _host_resources(stack)
    autopilot = RegistryAutopilot(
        stack,
        "ModelRegistry",
        config=HOST_CONFIG,
        permissions_boundary=BOUNDARY_ARN,
        role_name_prefix=ROLE_NAME_PREFIX,
    )
    # The host wires more to what the construct exposes: a rule on its bus, alarms on its queues and functions.
    events.Rule(
        stack,
        "ModelVersionsToPlatform",
        event_bus=autopilot.bus,
        event_pattern=events.EventPattern(detail_type=["ModelVersionValidated"]),
        targets=[targets.SqsQueue(host_queue, dead_letter_queue=host_dead_letters)],
    )
    register_metrics = {
        "RegisterBacklog": autopilot.queues["register"].metric_approximate_age_of_oldest_message(),
        "RegisterErrors": autopilot.functions["register"].metric_errors(),
    }
    for alarm_id, metric in register_metrics.items():
        cloudwatch.Alarm(stack, alarm_id, metric=metric, threshold=1, evaluation_periods=1)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    assembly = app.synth()
    return ForeignApp(
        stack=stack,
        autopilot=autopilot,
        host_queue=host_queue,
        host_bucket=host_bucket,
        template=assembly.get_stack_by_name(stack.stack_name).template,
        report=json.loads((outdir / "validation-report.json").read_text()),
    )


def test_the_construct_synthesizes_in_a_foreign_app_and_passes_cdk_nag(foreign_app: ForeignApp):
    # GIVEN the foreign app (the fixture synthesized it with both nag packs; a finding would have raised)
    # WHEN we read the validation report and the template
    violations = [
        p for p in foreign_app.report["pluginReports"] if p["pluginName"] in NAG_PACKS and p.get("violations")
    ]

    # THEN nag found nothing, and the host's own queue and bucket sit in the same template as the pipeline's
    assert violations == []
    resources = foreign_app.template["Resources"]
    assert foreign_app.logical_id(foreign_app.host_queue) in resources
    assert foreign_app.logical_id(foreign_app.host_bucket) in resources
    assert foreign_app.logical_id(foreign_app.autopilot.bucket) in resources
    # and the names start with the host stack's name (the config's stack_name is the project's own stack only)
    bus = resources[foreign_app.logical_id(foreign_app.autopilot.bus)]
    assert bus["Properties"]["Name"] == "PlatformTools-events"
    assert foreign_app.autopilot.config.region == HOST_REGION


def test_every_role_has_the_permissions_boundary(foreign_app: ForeignApp):
    # GIVEN every IAM role in the foreign app's template (the host has none of its own)
    roles = foreign_app.resources("AWS::IAM::Role")

    # WHEN we read their permissions boundaries
    boundaries = {logical_id: role["Properties"].get("PermissionsBoundary") for logical_id, role in roles.items()}

    # THEN every one has the boundary, CDK's bucket-notifications handler (a stack singleton) included
    assert any(logical_id.startswith("BucketNotificationsHandler") for logical_id in roles)
    assert len(roles) >= 6
    assert boundaries == dict.fromkeys(roles, BOUNDARY_ARN)


def test_every_role_has_a_name_with_the_prefix_within_iams_limit(foreign_app: ForeignApp):
    # GIVEN every IAM role in the foreign app's template
    roles = foreign_app.resources("AWS::IAM::Role")

    # WHEN we read their names
    names = {logical_id: role["Properties"].get("RoleName") for logical_id, role in roles.items()}

    # THEN each is an explicit string that starts with the prefix, fits IAM's 64 characters, and none repeats
    assert all(isinstance(name, str) and name.startswith(ROLE_NAME_PREFIX) for name in names.values()), names
    assert max(len(name) for name in names.values()) <= ROLE_NAME_MAX
    assert len(set(names.values())) == len(names)
    register_role = foreign_app.logical_id(foreign_app.autopilot.pipelines["register"].role)
    assert names[register_role].startswith(f"{ROLE_NAME_PREFIX}ModelRegistryRegisterPipelineRole-")


def test_the_construct_exposes_its_resources_for_the_host_to_wire(foreign_app: ForeignApp):
    # GIVEN the construct's attributes and the host's rule and alarms built on them
    autopilot = foreign_app.autopilot
    resources = foreign_app.template["Resources"]

    # WHEN we look them up in the template
    rule = next(r for r in foreign_app.resources("AWS::Events::Rule").values() if "PlatformQueue" in json.dumps(r))
    alarm_dimensions = json.dumps(foreign_app.resources("AWS::CloudWatch::Alarm"))

    # THEN one queue, dead-letter queue and function per route, the topic, writer policy and archives are there,
    # and the host's rule and alarms point at the construct's bus, queue and function
    route_names = {route.name for route in ROUTES}
    assert set(autopilot.queues) == set(autopilot.dead_letter_queues) == set(autopilot.functions) == route_names
    exposed = [
        autopilot.bucket,
        autopilot.bucket_key,
        autopilot.bus,
        autopilot.topic,
        autopilot.writer_policy,
        *autopilot.archives.values(),
        *autopilot.queues.values(),
        *autopilot.dead_letter_queues.values(),
        *autopilot.functions.values(),
    ]
    assert all(foreign_app.logical_id(construct) in resources for construct in exposed)
    assert set(autopilot.archives) == {"artifact-events", "project-events"}
    assert rule["Properties"]["EventBusName"] == {"Ref": foreign_app.logical_id(autopilot.bus)}
    assert foreign_app.logical_id(autopilot.queues["register"]) in alarm_dimensions
    assert foreign_app.logical_id(autopilot.functions["register"]) in alarm_dimensions


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"register_max_concurrency": 1}, "prop 'register_max_concurrency' .* between 2 and 1000"),
        ({"tracing": "yes"}, "prop 'tracing' .* true or false"),
        ({"log_retention_days": 4}, "prop 'log_retention_days' .* one of"),
        ({"artifact_root_prefix": "models/*"}, "prop 'artifact_root_prefix' .* key prefix"),
        ({"vpc_subnet_ids": ["subnet-nope"]}, "prop 'vpc_subnet_ids' .* subnet-nope"),
        ({"mlflow_tracking_uri": "databricks"}, "'mlflowCredentialsSecretArn' is required"),
    ],
)
def test_a_bad_prop_raises_when_the_config_is_built(props: dict[str, Any], message: str):
    # GIVEN a prop out of its type or range, given in code (not through context)
    # WHEN the construct's config is built
    # THEN it raises, naming the prop (and its context key)
    with pytest.raises(ConfigError, match=message):
        RegistryConfig(**props)


def test_props_given_in_code_are_normalized_like_context():
    # GIVEN props in the forms code may pass them: tuples, padded strings, a boolean for snap_start
    config = RegistryConfig(
        vpc_subnet_ids=("subnet-0123456789abcdef0",),
        vpc_security_group_ids=("sg-0123456789abcdef0",),
        artifact_root_prefix=" teams/mlflow/ ",
        snap_start=False,  # type: ignore[arg-type]
    )

    # THEN they hold what the same context values would give
    assert config == RegistryConfig.from_mapping(
        {
            "vpcSubnetIds": "subnet-0123456789abcdef0",
            "vpcSecurityGroupIds": "sg-0123456789abcdef0",
            "artifactRootPrefix": "teams/mlflow",
            "snapStart": "false",
        }
    )


def _stack(tmp_path: Path, **kwargs: Any) -> Stack:
    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": []}, outdir=str(tmp_path))
    return Stack(app, "Host", **kwargs)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"policies_dir": "no/such/folder"}, "prop 'policies_dir' must be a folder"),
        ({"role_name_prefix": "x" * 33}, "prop 'role_name_prefix' must be 1 to 32"),
        ({"role_name_prefix": "team prefix "}, "prop 'role_name_prefix'"),
        ({"permissions_boundary": "arn:aws:iam::123:policy/x"}, "prop 'permissions_boundary'"),
        (
            {"config": RegistryConfig(region="us-east-1")},
            "prop 'region' .* 'us-east-1' but the stack is in 'eu-west-1'",
        ),
    ],
)
def test_a_bad_construct_prop_raises_naming_it(tmp_path: Path, props: dict[str, Any], message: str):
    # GIVEN a host stack in eu-west-1
    stack = _stack(tmp_path, env=Environment(region=HOST_REGION))

    # WHEN the construct is built with a bad prop
    # THEN it raises, naming the prop
    with pytest.raises(ConfigError, match=message):
        RegistryAutopilot(stack, "ModelRegistry", **props)


def test_a_policies_folder_of_its_own_is_checked_and_shipped_as_policies(tmp_path: Path):
    # GIVEN a team's own policies folder under another name: the project's default and a policy for "churn"
    team_policies = shutil.copytree(POLICIES_DIR, tmp_path / "team-policies")
    shutil.copy(team_policies / "default.yaml", team_policies / "churn.yaml")

    # WHEN the construct is built with it, and the functions' bundler copies its packages
    autopilot = RegistryAutopilot(_stack(tmp_path / "app"), "ModelRegistry", policies_dir=team_policies)
    bundle = tmp_path / "bundle"
    LocalPythonBundler(packages=[(team_policies, "policies")]).try_bundle(str(bundle), None)  # type: ignore[arg-type]

    # THEN the construct loaded that folder's policies, and the bundle holds them where the functions look (policies/)
    assert autopilot.policies_dir == team_policies.resolve()
    assert set(autopilot.code.policies.policies) == {"default", "churn"}
    assert sorted(p.name for p in (bundle / "policies").iterdir()) == ["churn.yaml", "default.yaml"]


def test_a_broken_policy_in_the_folder_stops_the_construct(tmp_path: Path):
    # GIVEN a policies folder whose default policy does not parse
    folder = shutil.copytree(POLICIES_DIR, tmp_path / "broken-policies")
    (folder / "default.yaml").write_text("thresholds: [unclosed\n")

    # WHEN the construct is built with it
    # THEN it raises, naming the file
    with pytest.raises(PolicyError, match="default.yaml"):
        RegistryAutopilot(_stack(tmp_path / "app"), "ModelRegistry", policies_dir=folder)


def test_a_boundary_given_as_a_managed_policy_applies_to_roles(tmp_path: Path):
    # GIVEN a host stack and a boundary given as an IManagedPolicy (by name)
    stack = _stack(tmp_path)
    boundary = iam.ManagedPolicy.from_managed_policy_name(stack, "Boundary", "platform-boundary")

    # WHEN the construct is built with it and synthesized
    RegistryAutopilot(stack, "ModelRegistry", permissions_boundary=boundary)
    roles = [r for r in stack.resolve(_template(stack)).values() if r["Type"] == "AWS::IAM::Role"]

    # THEN every role names that policy as its boundary, and no role got an explicit name
    assert roles
    for role in roles:
        assert "policy/platform-boundary" in json.dumps(role["Properties"]["PermissionsBoundary"])
        assert "RoleName" not in role["Properties"]


def _template(stack: Stack) -> dict[str, Any]:
    from aws_cdk.assertions import Template

    return Template.from_stack(stack).to_json()["Resources"]


# --- an existing bucket given as a construct (props `bucket`, `bucket_key`) ----------------------------------------

TEAM_BUCKET = "team-ml-models"


def _synth_with_nag(app: App, stack: Stack, outdir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    template = app.synth().get_stack_by_name(stack.stack_name).template
    return template, json.loads((outdir / "validation-report.json").read_text())


def _types(template: dict[str, Any], prefix: str) -> list[str]:
    return [r["Type"] for r in template["Resources"].values() if r["Type"].startswith(prefix)]


def test_an_existing_bucket_given_as_a_prop_is_used_and_never_owned(tmp_path: Path):
    # GIVEN a foreign app whose stack imports its own existing bucket by name, and the construct inside with `bucket=`
    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": []}, outdir=str(tmp_path))
    stack = Stack(app, "PlatformTools", env=Environment(region=HOST_REGION))
    team_bucket = s3.Bucket.from_bucket_name(stack, "TeamBucket", TEAM_BUCKET)
    autopilot = RegistryAutopilot(
        stack, "ModelRegistry", config=RegistryConfig(mlflow_tracking_uri=TRACKING_URI), bucket=team_bucket
    )

    # WHEN it is synthesized with both cdk-nag packs
    template, report = _synth_with_nag(app, stack, tmp_path)

    # THEN nag found nothing; no bucket, bucket policy, key of the bucket or notification resource was created
    assert [p for p in report["pluginReports"] if p["pluginName"] in NAG_PACKS and p.get("violations")] == []
    assert _types(template, "AWS::S3::") == []
    assert _types(template, "Custom::") == []
    assert autopilot.bucket is team_bucket
    assert autopilot.bucket_key is None
    # AND the register rule watches that bucket, as with `artifactBucketName`
    rule = template["Resources"][stack.resolve(autopilot.pipelines["register"].rule.node.default_child.logical_id)]
    assert rule["Properties"]["EventPattern"]["detail"]["bucket"]["name"] == [TEAM_BUCKET]
    assert template["Outputs"]["ImportedBucketName"]["Value"] == TEAM_BUCKET


def test_the_construct_beside_the_hosts_own_notification_on_the_same_bucket_leaves_it_alone(tmp_path: Path):
    # GIVEN a host stack with its existing bucket (and its SSE-KMS key), the construct using it, and the host's own
    # SQS notification on that bucket (CDK's notifications custom resource, the host's)
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3_notifications as s3n

    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": []}, outdir=str(tmp_path))
    stack = Stack(app, "PlatformTools", env=Environment(region=HOST_REGION))
    host_queue, _, _ = _host_resources(stack)
    key = kms.Key.from_key_arn(stack, "TeamKey", f"arn:aws:kms:{HOST_REGION}:123456789012:key/1234abcd-0000")
    team_bucket = s3.Bucket.from_bucket_attributes(stack, "TeamBucket", bucket_name=TEAM_BUCKET, encryption_key=key)
    autopilot = RegistryAutopilot(
        stack,
        "ModelRegistry",
        config=RegistryConfig(mlflow_tracking_uri=TRACKING_URI),
        bucket=team_bucket,
        bucket_key=key,
    )
    team_bucket.add_event_notification(
        s3.EventType.OBJECT_CREATED, s3n.SqsDestination(host_queue), s3.NotificationKeyFilter(prefix="exports/")
    )
    handler = stack.node.find_child("BucketNotificationsHandler050a0587b7544547bf325f094a3db834")
    acknowledge(
        handler,
        {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]": (
                "The host's own bucket notification: CDK's handler role comes with this managed policy only."
            )
        },
    )

    # WHEN it is synthesized with both cdk-nag packs
    template, report = _synth_with_nag(app, stack, tmp_path)

    # THEN both synthesize clean; the host's notification is the only notifications resource, it holds the host's
    # queue only (no EventBridge setting of the construct's), and it is not under the construct
    assert [p for p in report["pluginReports"] if p["pluginName"] in NAG_PACKS and p.get("violations")] == []
    notifications = {k: r for k, r in template["Resources"].items() if r["Type"] == "Custom::S3BucketNotifications"}
    (configuration,) = (r["Properties"]["NotificationConfiguration"] for r in notifications.values())
    assert set(configuration) == {"QueueConfigurations"}
    assert configuration["QueueConfigurations"][0]["Filter"]["Key"]["FilterRules"] == [
        {"Name": "prefix", "Value": "exports/"}
    ]
    construct_ids = {stack.resolve(c.logical_id) for c in autopilot.node.find_all() if hasattr(c, "logical_id")}
    assert not set(notifications) & construct_ids
    s3_resources = {k for k, r in template["Resources"].items() if r["Type"].startswith("AWS::S3::")}
    assert not s3_resources & construct_ids  # the host's own buckets only
    # AND the construct's roles decrypt with the given key
    assert autopilot.bucket_key is key
    assert key.key_arn in json.dumps(template["Resources"])


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"bucket_key": "key"}, "prop 'bucket_key' is the key of an existing bucket"),
        ({"config": RegistryConfig(artifact_bucket_name="other-bucket"), "bucket": "bucket"}, "prop 'bucket' is"),
    ],
)
def test_bucket_props_that_contradict_the_config_are_refused(tmp_path: Path, props: dict[str, Any], message: str):
    # GIVEN a host stack with an existing bucket
    stack = _stack(tmp_path)
    bucket = s3.Bucket.from_bucket_name(stack, "TeamBucket", TEAM_BUCKET)
    from aws_cdk import aws_kms as kms

    key = kms.Key.from_key_arn(stack, "TeamKey", f"arn:aws:kms:{HOST_REGION}:123456789012:key/1234abcd-0000")
    constructs = {"bucket": bucket, "key": key}
    given = {name: constructs[value] if isinstance(value, str) else value for name, value in props.items()}
    # WHEN the construct gets a key without its bucket, or a bucket other than the config's
    # THEN it raises, naming the prop
    with pytest.raises(ConfigError, match=message):
        RegistryAutopilot(stack, "ModelRegistry", **given)
