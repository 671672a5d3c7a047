"""The synthesized template deployed with moto's CloudFormation, and an upload routed by what it created.

What runs: `cdk.json` as committed is synthesized (bundling skipped, as in the infrastructure tests); what
`cdk bootstrap` and `cdk deploy` would do first is done against moto's server on 127.0.0.1: the bootstrap bucket and
its version parameter, every file asset of the assembly's asset manifest published to its destination (the
directories zipped, the template uploaded), then CreateStack with the template's S3 URL. The stack must reach
CREATE_COMPLETE with every resource it still declares. Then an upload to the bucket it created must reach the
register queue it created, through the rule it created on the default bus; an upload the rule does not match must not.

moto 5.2.5 cannot deploy the template as synthesized. Removed before CreateStack (`UNSUPPORTED`,
`archives_the_default_bus`), because moto has no CloudFormation model for them (`moto/cloudformation/parsing.py` skips
them with "No Moto CloudFormation support") or cannot run them:
- AWS::CloudWatch::Alarm, AWS::S3::BucketPolicy, AWS::SNS::TopicPolicy, AWS::SQS::QueuePolicy, AWS::Lambda::Alias:
  no model. moto enforces no resource policy anyway, so the routing below does not depend on the policies; that the
  queue policies let the rules send is checked in `tests/infrastructure/test_deploy_rules.py`.
- Custom::S3BucketNotifications: moto would invoke its handler function, which needs Docker. After the stack is
  created the test makes the call that handler makes: PutBucketNotificationConfiguration with
  `EventBridgeConfiguration`.
- the archive of the default bus (the artifact bucket's S3 events): moto delivers an S3 event to every rule of
  every bus inside one `try`, and the archive's rule raises on it (KeyError 'archive-arn' in moto/events/models.py,
  `Rule.send_to_targets`), so no rule after it, the register rule included, would see the event. The project bus's
  archive stays.
- what refers to a removed resource: the dashboard (it lists the alarms) and the three
  event source mappings (they invoke the routes' `live` aliases). Without them no function consumes the queues, so
  the routed message stays on the register queue to be read.
Changed, because moto's models mishandle the CloudFormation form (`apply_moto_workarounds`): KMS keys lose their Tags
(moto reads CloudFormation's Key/Value tags as TagKey/TagValue and fails); archives get their EventPattern as a JSON
string and an ArchiveName of at most 48 characters (moto json-loads the pattern, and rejects the name it generates
itself for being over 48); rules on the project bus name it instead of `Ref`-ing it (moto's Ref of an event bus is
not its name). Of an S3 bucket's properties moto applies only encryption and tags, so versioning, lifecycle, logging
and the public access block are checked in `tests/infrastructure` only.
"""

from __future__ import annotations

import io
import json
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from functions.project import ROOT
from sandbox import DUMMY_CREDENTIALS
from sandbox.processes import LOCALHOST, ChildProcess, free_port, wait_until_healthy

pytestmark = pytest.mark.slow

REPO_ROOT = ROOT
REGION = "us-east-1"
STACK_NAME = "RegistryAutopilot"
BOOTSTRAP_QUALIFIER = "hnb659fds"
UNSUPPORTED = {
    "AWS::CloudWatch::Alarm",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Lambda::Alias",
    "Custom::S3BucketNotifications",
}


@pytest.fixture(autouse=True)
def sandbox_env() -> None:
    """This module runs its own moto server: it does not start (or point at) the session sandbox."""


@dataclass(frozen=True)
class Deployment:
    endpoint_url: str
    template: dict[str, Any]
    removed: dict[str, str]
    outputs: dict[str, str]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    server = ChildProcess.start(
        "moto server",
        [sys.executable, "-m", "sandbox.moto_server", "-H", LOCALHOST, "-p", str(port)],
        env={"PATH": "/usr/bin:/bin", **DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": REGION},
        log_path=tmp_path_factory.mktemp("moto") / "moto.log",
        cwd=REPO_ROOT,
    )
    try:
        url = f"http://{LOCALHOST}:{port}"
        wait_until_healthy(f"{url}/moto-api/", child=server, deadline=time.monotonic() + 60, what="moto server")
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def deployed(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    from tests.infrastructure.conftest import synthesize

    synth = synthesize({}, outdir=tmp_path_factory.mktemp("cdk.out"))
    probe = Deployment(moto_endpoint, {}, {}, {})
    account = probe.client("sts").get_caller_identity()["Account"]

    # what `cdk bootstrap` leaves behind, then what `cdk deploy` publishes
    bucket = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{account}-{REGION}"
    s3 = probe.client("s3")
    s3.create_bucket(Bucket=bucket)
    probe.client("ssm").put_parameter(Name=f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version", Value="30", Type="String")
    template, removed = deployable(synth.template_json)
    manifest = json.loads((synth.outdir / f"{STACK_NAME}.assets.json").read_text())
    template_key = publish_assets(s3, bucket, manifest, synth.outdir, template)

    cloudformation = probe.client("cloudformation")
    cloudformation.create_stack(
        StackName=STACK_NAME,
        TemplateURL=f"https://{bucket}.s3.amazonaws.com/{template_key}",
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = wait_for_stack(cloudformation)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Deployment(moto_endpoint, template, removed, outputs)


def deployable(synthesized: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The template without what moto cannot deploy, and with its workarounds (see the module docstring)."""
    from tests.infrastructure.template_queries import references

    template = json.loads(json.dumps(synthesized))
    resources = template["Resources"]
    removed = {k for k, v in resources.items() if v["Type"] in UNSUPPORTED or archives_the_default_bus(v)}
    while more := {
        k for k, v in resources.items() if k not in removed and references(v.get("Properties", {})) & removed
    }:
        removed |= more
    removed_types = {k: resources[k]["Type"] for k in removed}
    template["Resources"] = {k: v for k, v in resources.items() if k not in removed}
    for resource in template["Resources"].values():
        depends = resource.get("DependsOn")
        if depends is not None:
            resource["DependsOn"] = [
                d for d in ([depends] if isinstance(depends, str) else depends) if d not in removed
            ]
    template["Outputs"] = {k: o for k, o in template.get("Outputs", {}).items() if not references(o) & removed}
    apply_moto_workarounds(template)
    return template, removed_types


def archives_the_default_bus(resource: dict[str, Any]) -> bool:
    """An archive of the default bus: its SourceArn names no event bus of the template."""
    from tests.infrastructure.template_queries import references

    return resource["Type"] == "AWS::Events::Archive" and not references(resource["Properties"]["SourceArn"])


def apply_moto_workarounds(template: dict[str, Any]) -> None:
    """The changes the module docstring lists under "Changed"."""
    resources = template["Resources"]
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::KMS::Key":
            properties.pop("Tags", None)
        if resource["Type"] == "AWS::Events::Archive":
            properties["EventPattern"] = json.dumps(properties["EventPattern"])
            properties["ArchiveName"] = logical_id[:48]
        bus = properties.get("EventBusName")
        if resource["Type"] == "AWS::Events::Rule" and isinstance(bus, dict):
            properties["EventBusName"] = resources[bus["Ref"]]["Properties"]["Name"]


def publish_assets(s3: Any, bucket: str, manifest: dict[str, Any], outdir: Path, template: dict[str, Any]) -> str:
    """Upload every file asset where the manifest says (as cdk-assets does); return the template's key."""
    template_key = ""
    for asset in manifest["files"].values():
        (destination,) = asset["destinations"].values()
        source = Path(asset["source"]["path"])
        source = source if source.is_absolute() else outdir / source
        if asset["source"].get("packaging") == "zip":
            body = zipped(source)
        elif source.name == f"{STACK_NAME}.template.json":
            body, template_key = json.dumps(template).encode(), destination["objectKey"]
        else:
            body = source.read_bytes()
        s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)
    assert template_key, "the asset manifest lists the stack's template"
    return template_key


def zipped(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(directory))
    return buffer.getvalue()


def wait_for_stack(cloudformation: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        (stack,) = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return stack
        time.sleep(0.5)


def receive_all(sqs: Any, queue_url: str, *, until: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Messages of the queue (bodies parsed) until `until(messages)` holds or the timeout passes."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until(messages) and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages += [json.loads(m["Body"]) for m in answer.get("Messages", [])]
    return messages


def test_moto_creates_every_resource_the_template_still_declares(deployed: Deployment):
    # GIVEN the stack moto created from the synthesized template (less what the module docstring lists)
    cloudformation = deployed.client("cloudformation")
    summaries = cloudformation.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]

    # THEN each remaining resource exists and is complete, and exactly the listed types went missing
    assert {s["LogicalResourceId"] for s in summaries} == set(deployed.template["Resources"])
    assert {s["ResourceStatus"] for s in summaries} == {"CREATE_COMPLETE"}
    assert set(deployed.removed.values()) == UNSUPPORTED | {
        "AWS::Events::Archive",
        "AWS::CloudWatch::Dashboard",
        "AWS::Lambda::EventSourceMapping",
    }
    (removed_archive,) = (k for k, v in deployed.removed.items() if v == "AWS::Events::Archive")
    assert removed_archive.startswith("EventBusesArtifactEventsArchive")
    assert any(k.startswith("EventBusesProjectBusProjectEventsArchive") for k in deployed.template["Resources"])
    assert len(deployed.template["Resources"]) >= 40


def test_the_bucket_rule_and_register_queue_are_configured_as_synthesized(deployed: Deployment):
    # GIVEN the deployed bucket, register rule and register queue, found through the stack's outputs
    bucket = deployed.outputs["BucketName"]
    rule_name = deployed.outputs["RegisterRuleArn"].split("/")[-1]
    queue_url = deployed.outputs["RegisterQueueUrl"]
    s3, events, sqs = deployed.client("s3"), deployed.client("events"), deployed.client("sqs")

    # THEN the bucket is encrypted with the stack's key (moto applies no other bucket property: versioning,
    # lifecycle, logging and public access block are checked in tests/infrastructure only)
    (encryption,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert encryption["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"].startswith("arn:aws:kms:")
    # AND the rule listens on the default bus for MLmodel uploads of this bucket
    rule = events.describe_rule(Name=rule_name, EventBusName="default")
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"]["bucket"]["name"] == [bucket]
    assert pattern["detail"]["object"]["key"] == [{"suffix": "/MLmodel"}]
    # AND it targets the register queue, with retries and the register dead-letter queue
    (target,) = events.list_targets_by_rule(Rule=rule_name, EventBusName="default")["Targets"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert target["Arn"] == attributes["QueueArn"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    dlq_url = deployed.outputs["RegisterDeadLetterQueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert target["DeadLetterConfig"]["Arn"] == dlq_arn
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 8}
    assert attributes["VisibilityTimeout"] == "360"


def test_an_mlmodel_upload_reaches_the_register_queue_and_nothing_else_does(deployed: Deployment):
    # GIVEN the bucket sending its events to EventBridge (the call the notifications custom resource makes)
    bucket = deployed.outputs["BucketName"]
    s3, sqs = deployed.client("s3"), deployed.client("sqs")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})

    # WHEN a model's weights and then its MLmodel are uploaded under the artifact root
    prefix = "mlflow/1/0123456789abcdef/artifacts/model"
    s3.put_object(Bucket=bucket, Key=f"{prefix}/model.pkl", Body=b"weights")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/MLmodel", Body=b"flavors: {}\n")

    # THEN the register queue receives the MLmodel's S3 event, as EventBridge shapes it, and only that one
    messages = receive_all(sqs, deployed.outputs["RegisterQueueUrl"], until=lambda got: len(got) >= 1)
    messages += receive_all(sqs, deployed.outputs["RegisterQueueUrl"], until=lambda got: False, timeout=3.0)
    assert [m["detail"]["object"]["key"] for m in messages] == [f"{prefix}/MLmodel"]
    (event,) = messages
    assert event["source"] == "aws.s3"
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["bucket"]["name"] == bucket
    # AND the project bus's queues get nothing from S3
    for output in ("ValidateQueueUrl", "AliasesQueueUrl"):
        assert receive_all(sqs, deployed.outputs[output], until=lambda got: False, timeout=1.0) == [], output
