"""The forwarder stack for a bucket in another account: one rule on the bucket account's default bus, sending the
register route's events (narrowed to the watched prefixes) to the project bus with its own role and dead-letter queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from cfnlint.api import ManualArgs, lint_file

from functions.routing import REGISTER, S3_SOURCE, Bus, receiving_forwarded_events, s3_forward_pattern
from stacks.config import ConfigError
from stacks.cross_account import project_side_policies, reading_routes, render, role_placeholder
from stacks.forwarder_stack import ArtifactEventsForwarderStack, forwarder_stack_from_context
from tests.infrastructure.conftest import NAG_PACKS

PROJECT_ACCOUNT = "111111111111"
BUCKET_ACCOUNT = "222222222222"
REGION = "eu-west-1"
BUS_ARN = f"arn:aws:events:{REGION}:{PROJECT_ACCOUNT}:event-bus/RegistryAutopilot-events"
BUCKET = "data-lake-models"
PREFIXES = ("models", "mlflow")


def _synth(tmp_path: Path) -> tuple[ArtifactEventsForwarderStack, dict[str, Any]]:
    app = App(outdir=str(tmp_path))
    stack = ArtifactEventsForwarderStack(
        app,
        "Forwarder",
        project_bus_arn=BUS_ARN,
        bucket_name=BUCKET,
        prefixes=PREFIXES,
        env=Environment(account=BUCKET_ACCOUNT, region=REGION),
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    template = app.synth().get_stack_by_name("Forwarder").template
    return stack, template


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[ArtifactEventsForwarderStack, dict[str, Any]]:
    return _synth(tmp_path_factory.mktemp("forwarder"))


def _only(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = (r for r in template["Resources"].values() if r["Type"] == kind)
    return resource


def test_synth_passes_both_nag_packs(synth, tmp_path_factory):
    # GIVEN the forwarder stack with AwsSolutions and Serverless checks attached (the fixture synthesized it: an
    # unacknowledged finding would have raised)
    # WHEN the validation report is read
    outdir = Path(synth[0].node.root.outdir)
    report = json.loads((outdir / "validation-report.json").read_text())
    # THEN no pack reported a violation
    assert [p for p in report["pluginReports"] if p["pluginName"] in NAG_PACKS and p.get("violations")] == []


def test_the_rule_sends_the_register_routes_events_of_this_bucket_under_the_watched_prefixes(synth):
    # GIVEN the synthesized forwarder
    _, template = synth
    rule = _only(template, "AWS::Events::Rule")["Properties"]
    # WHEN its pattern is compared with the register route's, restricted to this bucket
    register = REGISTER.event_pattern(bucket_name=BUCKET)
    # THEN it is that pattern, from S3 only, with the key matcher narrowed to `<prefix>/…/MLmodel` per prefix
    assert rule["EventPattern"] == {
        **register,
        "source": [S3_SOURCE],
        "detail": {
            "bucket": register["detail"]["bucket"],
            "object": {"key": [{"wildcard": "models/*/MLmodel"}, {"wildcard": "mlflow/*/MLmodel"}]},
        },
    }
    assert rule["EventPattern"] == s3_forward_pattern(BUCKET, PREFIXES)
    assert "EventBusName" not in rule  # the account's default bus, where S3 delivers


def test_the_target_is_the_project_bus_with_its_role_retries_and_dead_letter_queue(synth):
    # GIVEN the synthesized forwarder
    stack, template = synth
    (target,) = _only(template, "AWS::Events::Rule")["Properties"]["Targets"]
    # THEN the one target is the given bus ARN, through the stack's role, retried like the project's targets, and
    # dead-lettered into the stack's queue
    assert target["Arn"] == BUS_ARN
    assert target["RoleArn"] == {"Fn::GetAtt": [stack.resolve(stack.role.node.default_child.logical_id), "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert target["DeadLetterConfig"]["Arn"] == {
        "Fn::GetAtt": [stack.resolve(stack.dead_letter_queue.node.default_child.logical_id), "Arn"]
    }


def test_the_role_may_only_put_events_on_that_bus(synth):
    # GIVEN the synthesized forwarder
    _, template = synth
    role = _only(template, "AWS::IAM::Role")["Properties"]
    (policy,) = (r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy")
    # THEN EventBridge assumes the role, and its one statement is events:PutEvents on exactly the project bus
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role
    assert policy["PolicyDocument"]["Statement"] == [
        {"Action": "events:PutEvents", "Effect": "Allow", "Resource": BUS_ARN}
    ]


def test_the_dead_letter_queue_is_encrypted_tls_only_and_alarmed(synth):
    # GIVEN the synthesized forwarder
    stack, template = synth
    t = Template.from_json(template)
    queue_id = stack.resolve(stack.dead_letter_queue.node.default_child.logical_id)
    # THEN the queue is encrypted, refuses plain HTTP, accepts this rule's dead letters, and an alarm watches it
    t.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})
    statements = _only(template, "AWS::SQS::QueuePolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    assert any(
        s["Action"] == "sqs:SendMessage" and s["Principal"] == {"Service": "events.amazonaws.com"} for s in statements
    )
    alarm = _only(template, "AWS::CloudWatch::Alarm")["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    assert alarm["Threshold"] == 1
    assert "Runbook: docs/alarms.md" in json.dumps(alarm["AlarmDescription"])


def test_outputs_carry_the_policies_the_other_sides_add(synth):
    # GIVEN the synthesized forwarder
    stack, template = synth
    outputs = template["Outputs"]
    # WHEN the policy outputs are parsed
    bus_policy = json.loads(outputs["ProjectBusPolicy"]["Value"])
    bucket_policy = json.loads(outputs["BucketPolicy"]["Value"])
    key_statement = json.loads(outputs["KeyPolicyStatement"]["Value"])
    # THEN the bus accepts PutEvents from the bucket account's forwarder rule only
    (accept,) = bus_policy["Statement"]
    assert accept["Principal"] == {"AWS": f"arn:aws:iam::{BUCKET_ACCOUNT}:root"}
    assert (accept["Action"], accept["Resource"]) == ("events:PutEvents", BUS_ARN)
    assert accept["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": f"arn:aws:events:{REGION}:{BUCKET_ACCOUNT}:rule/registry-autopilot-forward-{BUCKET}"
        }
    }
    assert _only(template, "AWS::Events::Rule")["Properties"]["Name"] == f"registry-autopilot-forward-{BUCKET}"
    # AND the bucket and key statements grant the reading roles (placeholders) only under the watched prefixes
    placeholders = [role_placeholder(name) for name in reading_routes()]
    read, listing = bucket_policy["Statement"]
    assert read["Principal"] == listing["Principal"] == key_statement["Principal"] == {"AWS": placeholders}
    assert read["Resource"] == [f"arn:aws:s3:::{BUCKET}/models/*", f"arn:aws:s3:::{BUCKET}/mlflow/*"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models", "models/*", "mlflow", "mlflow/*"]}}
    assert key_statement["Action"] == "kms:Decrypt"
    assert key_statement["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    # AND the text a preflight prints holds the same documents
    assert json.dumps(bus_policy, indent=2) in stack.policies_text


def test_policies_take_real_role_arns_when_known():
    # GIVEN the roles' ARNs
    arns = {name: f"arn:aws:iam::{PROJECT_ACCOUNT}:role/{name}" for name in reading_routes()}
    # WHEN the project-side policies are built with them
    policies = project_side_policies(
        project_bus_arn=BUS_ARN, bucket_account=BUCKET_ACCOUNT, bucket_name=BUCKET, prefixes=PREFIXES, role_arns=arns
    )
    # THEN no placeholder is left
    assert "function role ARN>" not in render(policies)
    assert policies["keyPolicyStatement"]["Principal"] == {"AWS": list(arns.values())}


def test_template_passes_cfn_lint(synth, tmp_path: Path):
    # GIVEN the synthesized forwarder template
    template_file = tmp_path / "template.json"
    template_file.write_text(json.dumps(synth[1]))
    # WHEN cfn-lint checks it in its region
    matches = lint_file(template_file, config=ManualArgs(regions=[REGION]))
    # THEN it reports nothing
    assert [f"{m.rule.id} {m.message}" for m in matches] == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"project_bus_arn": "arn:aws:sqs:eu-west-1:111111111111:queue"}, "project bus ARN must be"),
        ({"project_bus_arn": f"arn:aws:events:{REGION}:{BUCKET_ACCOUNT}:event-bus/x"}, "needs no forwarder"),
        ({"prefixes": ("models/*",)}, "free of"),
        ({"prefixes": ()}, "non-empty"),
    ],
)
def test_bad_props_fail_the_synth_with_one_clear_line(kwargs, message):
    # GIVEN props naming no event bus, the bucket account's own bus, or a prefix that is no plain prefix
    props = {"project_bus_arn": BUS_ARN, "bucket_name": BUCKET, "prefixes": PREFIXES, **kwargs}
    # WHEN the stack is built
    # THEN it refuses, saying what is wrong
    with pytest.raises((ConfigError, ValueError), match=message):
        ArtifactEventsForwarderStack(
            App(), "Forwarder", env=Environment(account=BUCKET_ACCOUNT, region=REGION), **props
        )


def test_from_context_builds_nothing_without_the_bucket_account():
    # GIVEN an app without `artifactBucketAccount`
    # WHEN the forwarder is asked for
    # THEN there is none (a bucket in the project's account needs no forwarder)
    assert (
        forwarder_stack_from_context(App(), project_bus_arn=BUS_ARN, bucket_name=BUCKET, artifact_root_prefix="mlflow")
        is None
    )


def test_from_context_binds_the_bucket_account_and_the_bus_region():
    # GIVEN an app with `artifactBucketAccount`
    app = App(context={"artifactBucketAccount": BUCKET_ACCOUNT})
    # WHEN the forwarder is built from it with the project's artifact root
    stack = forwarder_stack_from_context(
        app, project_bus_arn=BUS_ARN, bucket_name=BUCKET, artifact_root_prefix="team/a"
    )
    # THEN it is in the bucket account, in the bus's region, and watches `models/` and the artifact root
    assert stack is not None
    assert (stack.account, stack.region) == (BUCKET_ACCOUNT, REGION)
    keys = Template.from_stack(stack).to_json()
    (rule,) = (r for r in keys["Resources"].values() if r["Type"] == "AWS::Events::Rule")
    assert rule["Properties"]["EventPattern"]["detail"]["object"]["key"] == [
        {"wildcard": "models/*/MLmodel"},
        {"wildcard": "team/a/*/MLmodel"},
    ]


def test_from_context_refuses_a_bad_account():
    app = App(context={"artifactBucketAccount": "12345"})
    with pytest.raises(ConfigError, match="artifactBucketAccount.*12-digit"):
        forwarder_stack_from_context(app, project_bus_arn=BUS_ARN, bucket_name=BUCKET, artifact_root_prefix="mlflow")


def test_the_register_route_receiving_forwarded_events_listens_on_the_project_bus():
    # GIVEN the register route (on the default bus, where a local bucket's events arrive)
    # WHEN the stack's bucket is in another account
    forwarded = receiving_forwarded_events(REGISTER)
    # THEN its rule moves to the project bus with the same pattern, so the forwarded events (source aws.s3) match it
    assert (REGISTER.bus, forwarded.bus) == (Bus.DEFAULT, Bus.PROJECT)
    assert forwarded.event_pattern(bucket_name=BUCKET) == REGISTER.event_pattern(bucket_name=BUCKET)
    assert forwarded.name == REGISTER.name
    assert forwarded.handler == REGISTER.handler


def test_reference_datasets_are_readable_by_the_validate_role_alone_and_only_those_objects():
    # GIVEN a stack that proves models, one of whose policies scores versions on a reference dataset
    arns = {name: f"arn:aws:iam::{PROJECT_ACCOUNT}:role/{name}" for name in reading_routes()}
    # WHEN the bucket owner's policy is built with that dataset, and without
    with_data = project_side_policies(
        project_bus_arn=BUS_ARN,
        bucket_account=BUCKET_ACCOUNT,
        bucket_name=BUCKET,
        prefixes=PREFIXES,
        role_arns=arns,
        dataset_keys=["datasets/churn/holdout.csv", "datasets/churn/holdout.csv"],
    )
    without = project_side_policies(
        project_bus_arn=BUS_ARN, bucket_account=BUCKET_ACCOUNT, bucket_name=BUCKET, prefixes=PREFIXES, role_arns=arns
    )
    # THEN one statement more lets the validate role read that object (both actions), nothing else under datasets/
    statements = {s["Sid"]: s for s in with_data["bucketPolicy"]["Statement"]}
    datasets = statements["RegistryAutopilotReadReferenceDatasets"]
    assert datasets["Principal"] == {"AWS": [arns["validate"]]}
    assert datasets["Resource"] == [f"arn:aws:s3:::{BUCKET}/datasets/churn/holdout.csv"]
    assert datasets["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert len(without["bucketPolicy"]["Statement"]) == len(statements) - 1
