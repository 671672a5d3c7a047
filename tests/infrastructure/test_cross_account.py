"""A bucket in another account (`artifactBucketAccount`), wired: the app builds the forwarder stack for that account,
the project stack's register rule listens on the project bus (where forwarded events arrive), the bus lets that
forwarder rule in, and the forwarded S3 events are archived there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack

from functions.routing import REGISTER, s3_archive_pattern
from stacks import outputs
from stacks.config import ConfigError, RegistryConfig, bind_account
from stacks.cross_account import project_bus_policy_statement, reading_routes
from stacks.forwarder_stack import ArtifactEventsForwarderStack
from tests.infrastructure.conftest import NAG_PACKS, Synth, cdk_json_context
from tests.infrastructure.template_queries import role_statements
from tests.infrastructure.test_cfn_lint import ACCEPTED_WARNINGS, lint

PROJECT_ACCOUNT = "111111111111"
BUCKET_ACCOUNT = "222222222222"
REGION = "eu-west-1"
BUCKET = "data-lake-models"
KEY_ARN = f"arn:aws:kms:{REGION}:{BUCKET_ACCOUNT}:key/0a1b2c3d-1111-2222-3333-444455556666"
CONTEXT = {
    "artifactBucketName": BUCKET,
    "artifactBucketKeyArn": KEY_ARN,
    "artifactBucketAccount": BUCKET_ACCOUNT,
    "region": REGION,
    "account": PROJECT_ACCOUNT,
}
BUS_ARN = f"arn:aws:events:{REGION}:{PROJECT_ACCOUNT}:event-bus/RegistryAutopilot-events"


def _app(context: dict[str, Any], outdir: Path) -> App:
    from app import build_app

    return build_app(App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": [], **context}, outdir=str(outdir)))


@pytest.fixture(scope="module")
def cross_account(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synth, ArtifactEventsForwarderStack, dict]:
    outdir = tmp_path_factory.mktemp("cross-account-cdk.out")
    app = _app(CONTEXT, outdir)
    stacks = {child.node.id: child for child in app.node.children if isinstance(child, Stack)}
    assembly = app.synth()  # both nag packs attached: a finding raises
    project = stacks["RegistryAutopilot"]
    forwarder = stacks["RegistryAutopilotForwarder"]
    assert isinstance(forwarder, ArtifactEventsForwarderStack)
    synth = Synth(stack=project, template_json=assembly.get_stack_by_name(project.stack_name).template, outdir=outdir)
    return synth, forwarder, assembly.get_stack_by_name(forwarder.stack_name).template


def test_both_stacks_pass_both_nag_packs(cross_account):
    # GIVEN the app with a bucket in another account (the fixture synthesized it with cdk-nag attached)
    synth, _, _ = cross_account
    # WHEN the validation report is read
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    # THEN no pack reported a violation in either stack
    assert [p for p in report["pluginReports"] if p["pluginName"] in NAG_PACKS and p.get("violations")] == []


def test_the_register_rule_is_on_the_project_bus_with_the_register_pattern(cross_account):
    # GIVEN the project stack
    synth, _, _ = cross_account
    autopilot = synth.autopilot
    rule = synth.template_json["Resources"][synth.logical_id(autopilot.pipelines["register"].rule)]["Properties"]
    # THEN the register rule listens on the project bus, with the same pattern as for a bucket of this account
    assert rule["EventBusName"] == {"Ref": synth.logical_id(autopilot.bus)}
    assert rule["EventPattern"] == REGISTER.event_pattern(bucket_name=BUCKET)


def test_no_rule_or_archive_is_on_the_default_bus(cross_account):
    # GIVEN the project stack's rules and archives
    synth, _, _ = cross_account
    rules = synth.resources("AWS::Events::Rule").values()
    archives = synth.resources("AWS::Events::Archive").values()
    bus = {"Fn::GetAtt": [synth.logical_id(synth.autopilot.bus), "Arn"]}
    # THEN every rule names the project bus (none the default bus, where no event of the bucket arrives)
    assert rules
    assert all(r["Properties"].get("EventBusName") == {"Ref": synth.logical_id(synth.autopilot.bus)} for r in rules)
    # AND the bucket's forwarded S3 events are archived on the project bus, beside the project events
    assert all(a["Properties"]["SourceArn"] == bus for a in archives)
    assert s3_archive_pattern(BUCKET) in [a["Properties"]["EventPattern"] for a in archives]
    assert synth.logical_id(synth.autopilot.archives["artifact-events"]) in synth.resources("AWS::Events::Archive")


def test_the_bus_policy_lets_only_the_forwarder_rule_put_events(cross_account):
    # GIVEN the project bus's resource policy
    synth, _, _ = cross_account
    (policy,) = synth.resources("AWS::Events::EventBusPolicy").values()
    statement = policy["Properties"]["Statement"]
    # THEN it is exactly the documented statement: PutEvents on this bus from the bucket account, only from its
    # forwarder rule (the partition is known: cdk.json's target partitions and the region)
    assert policy["Properties"]["EventBusName"] == {"Ref": synth.logical_id(synth.autopilot.bus)}
    assert policy["Properties"]["StatementId"] == statement["Sid"]
    assert statement == project_bus_policy_statement(
        project_bus_arn=BUS_ARN,
        bucket_account=BUCKET_ACCOUNT,
        forwarder_rule_arn=f"arn:aws:events:{REGION}:{BUCKET_ACCOUNT}:rule/registry-autopilot-forward-{BUCKET}",
    )
    assert statement["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": f"arn:aws:events:{REGION}:{BUCKET_ACCOUNT}:rule/registry-autopilot-forward-{BUCKET}"
        }
    }


def test_the_forwarder_stack_is_built_for_the_bucket_account_with_the_project_bus_arn(cross_account):
    # GIVEN the forwarder stack app.py added
    _, forwarder, template = cross_account
    (rule,) = (r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule")
    # THEN it is in the bucket's account and the project's region, and sends to the project bus by its ARN
    assert (forwarder.account, forwarder.region) == (BUCKET_ACCOUNT, REGION)
    assert rule["Targets"][0]["Arn"] == BUS_ARN
    assert rule["Name"] == f"registry-autopilot-forward-{BUCKET}"


def test_route_roles_read_the_foreign_bucket_and_its_policies_are_outputs(cross_account):
    # GIVEN the project stack's register role and outputs
    synth, _, _ = cross_account
    statements = role_statements(synth, synth.autopilot.pipelines["register"].role)
    values = synth.template_json["Outputs"]
    # THEN the role reads under the watched prefixes and decrypts with the bucket's key
    assert any("s3:GetObject" in json.dumps(s["Action"]) and BUCKET in json.dumps(s["Resource"]) for s in statements)
    assert any(s["Action"] == "kms:Decrypt" and s["Resource"] == KEY_ARN for s in statements)
    # AND the bucket and key policy statements the bucket's owner adds name the real reading roles
    roles = [{"Fn::GetAtt": [synth.logical_id(synth.autopilot.pipelines[n].role), "Arn"]} for n in reading_routes()]
    for output in (outputs.ARTIFACT_BUCKET_POLICY, outputs.ARTIFACT_BUCKET_KEY_POLICY_STATEMENT):
        parts = values[output]["Value"]["Fn::Join"][1]
        assert all(role in parts for role in roles), output
        assert "function role ARN>" not in json.dumps(parts)
    # AND the stack names the bucket's account, which `ops preflight --stack` expects to own the bucket
    assert values[outputs.ARTIFACT_BUCKET_ACCOUNT]["Value"] == BUCKET_ACCOUNT


def test_the_default_app_builds_no_forwarder(tmp_path: Path):
    # GIVEN the app with the committed context
    app = _app({}, tmp_path)
    # THEN it holds the project stack only
    assert [c.node.id for c in app.node.children if isinstance(c, Stack)] == ["RegistryAutopilot"]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"artifactBucketAccount": BUCKET_ACCOUNT}, "'artifactBucketAccount' applies to an existing bucket"),
        ({"artifactBucketName": BUCKET, "artifactBucketAccount": "2222"}, "'artifactBucketAccount' must be a 12-digit"),
        (
            {"artifactBucketName": BUCKET, "artifactBucketAccount": BUCKET_ACCOUNT, "account": BUCKET_ACCOUNT},
            "is the stack's own account",
        ),
        ({"account": "12345"}, "'account' must be a 12-digit"),
    ],
)
def test_bad_bucket_account_context_is_refused_naming_the_key(context: dict[str, str], message: str):
    # GIVEN context that cannot work
    # WHEN the config is read
    # THEN it is refused in one line naming the key
    with pytest.raises(ConfigError, match=message):
        RegistryConfig.from_mapping(context)


@pytest.mark.parametrize(
    ("context", "default_account", "missing"),
    [
        ({"account": PROJECT_ACCOUNT}, None, "region"),
        ({"region": REGION}, None, "account"),
        ({}, "", "region and account"),
    ],
)
def test_the_app_refuses_a_bucket_account_without_the_project_region_and_account(
    context: dict[str, str], default_account: str | None, missing: str
):
    # GIVEN a bucket in another account, without the project stack's region or account (nor CDK_DEFAULT_ACCOUNT)
    config = RegistryConfig.from_mapping(
        {"artifactBucketName": BUCKET, "artifactBucketAccount": BUCKET_ACCOUNT, **context}
    )
    # WHEN the app binds the account
    # THEN it refuses, naming what is missing
    with pytest.raises(ConfigError, match=f"needs the project stack's {missing}"):
        bind_account(config, default_account)


def test_the_cli_default_account_binds_the_project_stack():
    # GIVEN a bucket in another account and the region, without `account`
    config = RegistryConfig.from_mapping(
        {"artifactBucketName": BUCKET, "artifactBucketAccount": BUCKET_ACCOUNT, "region": REGION}
    )
    # WHEN the app binds the account the CDK CLI gives (CDK_DEFAULT_ACCOUNT)
    # THEN the config holds it, and the bucket account's own is refused
    assert bind_account(config, PROJECT_ACCOUNT).account == PROJECT_ACCOUNT
    with pytest.raises(ConfigError, match="stack's own account"):
        bind_account(config, BUCKET_ACCOUNT)


def test_the_project_template_passes_cfn_lint(cross_account, tmp_path: Path):
    # GIVEN the project stack of a bucket in another account (bus policy, forwarded-events archive)
    synth, _, _ = cross_account
    # WHEN cfn-lint checks it in its region
    matches = lint(synth, tmp_path, [REGION])
    # THEN it reports nothing beyond the warnings the project accepts
    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id not in ACCEPTED_WARNINGS] == []
