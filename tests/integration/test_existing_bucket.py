"""An existing bucket: `python -m ops preflight`, and the opt-in EventBridge switch that keeps other notifications.

Both run against the sandbox's moto server on 127.0.0.1 (`sandbox.moto_server`, which also reports a bucket's
EventBridge switch as S3 does), on buckets of their own: the sandbox's bucket and rules are not touched.
"""

from __future__ import annotations

import json
import shlex
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config

from functions.domain.bucket_notifications import EVENT_BRIDGE
from functions.handlers.bucket_event_bridge import lambda_handler
from ops import aws_checks
from ops.__main__ import main as ops_main
from ops.aws_checks import owner_matches
from sandbox.environment import DUMMY_CREDENTIALS
from stacks import outputs
from tests.recorded_http import RecordedRegistry

LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:thumbnailer"


def _bucket(sandbox, *, versioned: bool = False) -> str:  # type: ignore[no-untyped-def]
    name = f"existing-{uuid.uuid4().hex[:12]}"
    sandbox.client("s3").create_bucket(Bucket=name)
    if versioned:
        sandbox.client("s3").put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _others(sandbox, bucket: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Give `bucket` an SQS, an SNS and a Lambda notification, as other teams' tools would have; returns them."""
    sqs, sns = sandbox.client("sqs"), sandbox.client("sns")
    queue_url = sqs.create_queue(QueueName=f"{bucket}-audit")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    configuration = {
        "QueueConfigurations": [{"Id": "audit", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}],
        "TopicConfigurations": [
            {
                "Id": "deletions",
                "TopicArn": sns.create_topic(Name=f"{bucket}-deletions")["TopicArn"],
                "Events": ["s3:ObjectRemoved:*"],
            }
        ],
        "LambdaFunctionConfigurations": [
            {
                "Id": "thumbnails",
                "LambdaFunctionArn": LAMBDA_ARN,
                "Events": ["s3:ObjectCreated:Put"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "images/"}]}},
            }
        ],
    }
    sandbox.client("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)
    return configuration


def _notifications(sandbox, bucket: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = sandbox.client("s3").get_bucket_notification_configuration(Bucket=bucket)
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def _request(request_type: str, bucket: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": "https://cloudformation-custom-resource-response.example.invalid/reply",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/RegistryAutopilot/1",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "BucketEventBridgeResource",
        "ResourceType": "Custom::BucketEventBridge",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:x",
            "BucketName": bucket,
        },
    }


def _event_bridge_delivers(sandbox, bucket: str) -> bool:  # type: ignore[no-untyped-def]
    """Upload an object and see whether its Object Created event reaches a rule on the default bus."""
    events, sqs = sandbox.client("events"), sandbox.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"{bucket}-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.s3"], "detail": {"bucket": {"name": [bucket]}}}
    events.put_rule(Name=f"{bucket}-events", EventPattern=json.dumps(pattern))
    events.put_targets(Rule=f"{bucket}-events", Targets=[{"Id": "queue", "Arn": queue_arn}])
    sandbox.client("s3").put_object(Bucket=bucket, Key="models/probe/MLmodel", Body=b"flavors: {}\n")
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2).get("Messages", [])
    return any(json.loads(m["Body"])["detail"]["object"]["key"] == "models/probe/MLmodel" for m in messages)


def test_enabling_event_bridge_keeps_sqs_sns_and_lambda_notifications_and_delete_leaves_them(sandbox):  # type: ignore[no-untyped-def]
    # GIVEN an existing bucket with another team's SQS, SNS and Lambda notifications, and EventBridge off
    bucket = _bucket(sandbox)
    others = _others(sandbox, bucket)
    replies: list[dict[str, Any]] = []

    def send(url: str, body: bytes) -> None:
        replies.append(json.loads(body))

    # WHEN the stack's custom resource is created (artifactBucketEventBridge=enable)
    lambda_handler(_request("Create", bucket), None, s3=sandbox.client("s3"), send=send)

    # THEN EventBridge is on and delivers, and every other notification is there as it was
    after_create = _notifications(sandbox, bucket)
    assert after_create == {**others, EVENT_BRIDGE: {}}
    assert _event_bridge_delivers(sandbox, bucket)

    # WHEN the stack is destroyed (the custom resource is deleted)
    lambda_handler(_request("Delete", bucket), None, s3=sandbox.client("s3"), send=send)

    # THEN nothing is rewritten: the other notifications stay, and so does EventBridge (documented)
    assert _notifications(sandbox, bucket) == after_create
    assert [r["Status"] for r in replies] == ["SUCCESS", "SUCCESS"]
    assert replies[0]["PhysicalResourceId"] == replies[1]["PhysicalResourceId"] == f"{bucket}-eventbridge"


def test_a_failure_is_reported_to_cloudformation_instead_of_left_waiting(sandbox):  # type: ignore[no-untyped-def]
    # GIVEN a bucket that does not exist
    replies: list[dict[str, Any]] = []
    # WHEN the custom resource is created for it
    lambda_handler(
        _request("Create", f"missing-{uuid.uuid4().hex[:8]}"),
        None,
        s3=sandbox.client("s3"),
        send=lambda url, body: replies.append(json.loads(body)),
    )
    # THEN CloudFormation hears FAILED, with S3's reason
    assert replies[0]["Status"] == "FAILED"
    assert "NoSuchBucket" in replies[0]["Reason"]


def _preflight(capsys, *args: str) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    status = ops_main(["preflight", *args])
    return status, capsys.readouterr().out.splitlines()


def _fix_command(lines: list[str], what: str) -> list[str]:
    (line,) = (line for line in lines if line.startswith(f"MISSING {what}"))
    return shlex.split(line.split("Bucket owner runs: ", 1)[1])


def test_preflight_says_what_is_missing_and_its_fix_makes_the_bucket_ready(sandbox, capsys):  # type: ignore[no-untyped-def]
    # GIVEN an existing bucket with other notifications, EventBridge and versioning off, SSE-S3, and a KMS key
    bucket = _bucket(sandbox)
    others = _others(sandbox, bucket)
    key_arn = sandbox.client("kms").create_key()["KeyMetadata"]["Arn"]

    # WHEN the preflight checks it against that key
    status, lines = _preflight(capsys, "--bucket", bucket, "--key-arn", key_arn)

    # THEN it is not ready, with one line for each problem, saying what it costs
    assert status == 2
    missing = [line.split(":", 1)[0] for line in lines if line.startswith("MISSING")]
    assert missing == [
        "MISSING EventBridge notifications",
        "MISSING versioning",
        "MISSING a default encryption with the given key",
    ]
    assert any("falls back to the object's ETag" in line for line in lines)
    assert lines[-1] == f"bucket {bucket}: not ready (3 problem(s))"

    # WHEN the bucket's owner runs the printed notification command (the merged configuration, not an empty one)
    command = _fix_command(lines, "EventBridge notifications")
    assert command[:3] == ["aws", "s3api", "put-bucket-notification-configuration"]
    merged = json.loads(command[command.index("--notification-configuration") + 1])
    assert merged == {**others, EVENT_BRIDGE: {}}
    sandbox.client("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=merged)
    # ... and the versioning and encryption commands
    sandbox.client("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    encryption = _fix_command(lines, "a default encryption")
    sandbox.client("s3").put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration=json.loads(
            encryption[encryption.index("--server-side-encryption-configuration") + 1]
        ),
    )

    # THEN the preflight passes, and the other notifications are still there
    status, lines = _preflight(capsys, "--bucket", bucket, "--key-arn", key_arn)
    assert (status, lines) == (0, [f"bucket {bucket}: ready"])
    assert _notifications(sandbox, bucket) == {**others, EVENT_BRIDGE: {}}


def test_preflight_names_a_kms_key_the_stack_was_not_told_of(sandbox, capsys):  # type: ignore[no-untyped-def]
    # GIVEN a ready bucket that encrypts with its own KMS key
    bucket = _bucket(sandbox, versioned=True)
    sandbox.client("s3").put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={EVENT_BRIDGE: {}}
    )
    key_arn = sandbox.client("kms").create_key()["KeyMetadata"]["Arn"]
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}
    sandbox.client("s3").put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})

    # WHEN the preflight runs without --key-arn
    status, lines = _preflight(capsys, "--bucket", bucket)

    # THEN it says which key, what it costs, and the context key to deploy with
    assert status == 2
    assert lines[0].startswith(f"MISSING the bucket's KMS key {key_arn}: ")
    assert "-c artifactBucketKeyArn=" in lines[0]


def test_preflight_prints_the_key_policy_statement_when_iam_cannot_grant_the_key(sandbox, capsys):  # type: ignore[no-untyped-def]
    # GIVEN a ready bucket whose key policy does not let the account's IAM grant the key
    bucket = _bucket(sandbox, versioned=True)
    s3, kms = sandbox.client("s3"), sandbox.client("kms")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={EVENT_BRIDGE: {}})
    key = kms.create_key()["KeyMetadata"]
    admin = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/KeyAdmin"}, "Action": "kms:*"}
    kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [{**admin, "Resource": "*"}]}),
    )
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}}
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
    role = "arn:aws:iam::123456789012:role/RegistryAutopilot-RegisterRole"

    # WHEN the preflight checks it with the key and the role that must use it
    status, lines = _preflight(capsys, "--bucket", bucket, "--key-arn", key["Arn"], "--role-arn", role)

    # THEN the one problem is the key policy, with the statement naming the role, decrypt and encrypt through S3
    assert status == 2
    (line,) = (line for line in lines if line.startswith("MISSING"))
    statement = json.loads(line.split("the statement ", 1)[1])
    assert statement["Principal"] == {"AWS": [role]}
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(statement["Action"])
    assert statement["Condition"]["StringEquals"]["kms:ViaService"] == "s3.us-east-1.amazonaws.com"


def test_preflight_of_a_stack_checks_the_bucket_its_outputs_name(sandbox, capsys):  # type: ignore[no-untyped-def]
    # GIVEN a deployed stack (its outputs only) on an existing bucket whose EventBridge notifications are off
    bucket = _bucket(sandbox, versioned=True)
    stack = f"Existing{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {outputs.IMPORTED_BUCKET_NAME: {"Value": bucket}, outputs.BUCKET_NAME: {"Value": bucket}},
    }
    sandbox.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))

    # WHEN the preflight checks the stack
    status, lines = _preflight(capsys, "--stack", stack)

    # THEN it names that bucket and the one thing missing
    assert status == 2
    assert [line.split(":", 1)[0] for line in lines if line.startswith("MISSING")] == [
        "MISSING EventBridge notifications"
    ]
    assert lines[-1] == f"bucket {bucket}: not ready (1 problem(s))"


@pytest.mark.parametrize("args", [["--bucket", "no-such-bucket-anywhere"], ["--stack", "NoSuchStack"]])
def test_preflight_of_something_that_does_not_exist_is_one_line_and_status_2(sandbox, capsys, args):  # type: ignore[no-untyped-def]
    # GIVEN a bucket or stack that does not exist
    # WHEN the preflight checks it
    status = ops_main(["preflight", *args])
    # THEN one error line, exit status 2
    captured = capsys.readouterr()
    assert status == 2
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("ops preflight: error: ")


def test_preflight_of_a_bucket_in_the_declared_account_is_ready(sandbox, capsys):  # type: ignore[no-untyped-def]
    # GIVEN a ready bucket of the sandbox's account (moto's 123456789012)
    bucket = _bucket(sandbox, versioned=True)
    sandbox.client("s3").put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={EVENT_BRIDGE: {}}
    )
    # WHEN the preflight checks it with that account declared, and with none (the caller's, from STS)
    # THEN both pass: the owner check sends ExpectedBucketOwner and S3 accepts it
    for args in (["--account", "123456789012"], []):
        assert _preflight(capsys, "--bucket", bucket, *args) == (0, [f"bucket {bucket}: ready"])


OWNER, OTHER = "123456789012", "111122223333"


def test_owner_check_reads_s3s_403_for_another_owner_as_a_mismatch(tmp_path):  # type: ignore[no-untyped-def]
    # GIVEN S3's answers to HeadBucket, recorded: 200 without ExpectedBucketOwner or with the owner's account, and
    # 403 with no body for another account (moto ignores ExpectedBucketOwner, moto/s3/responses.py never reads the
    # x-amz-expected-bucket-owner header, so its server cannot give this answer)
    def head_bucket(request):  # type: ignore[no-untyped-def]
        expected = request.header("x-amz-expected-bucket-owner")
        return (403, None) if expected not in (None, OWNER) else (200, None)

    server = RecordedRegistry(routes={("HEAD", "/ml-artifacts"): head_bucket}).start(tmp_path)
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        # WHEN the preflight checks the owner, declared right and declared wrong
        right, wrong = owner_matches(s3, "ml-artifacts", OWNER), owner_matches(s3, "ml-artifacts", OTHER)
    finally:
        server.stop()
    # THEN the wrong one is a mismatch, the right one is not, and S3 was asked with the declared account
    assert (right, wrong) == (True, False)
    assert [r.header("x-amz-expected-bucket-owner") for r in server.calls("/ml-artifacts")] == [OWNER, OTHER]


def test_preflight_of_a_stack_on_a_bucket_in_another_account_expects_that_account_to_own_it(sandbox):  # type: ignore[no-untyped-def]
    # GIVEN a deployed stack whose outputs say its bucket is in another account
    bucket = _bucket(sandbox, versioned=True)
    stack = f"Foreign{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            outputs.IMPORTED_BUCKET_NAME: {"Value": bucket},
            outputs.BUCKET_NAME: {"Value": bucket},
            outputs.ARTIFACT_BUCKET_POLICY: {"Value": "{}"},
            outputs.ARTIFACT_BUCKET_ACCOUNT: {"Value": "111111111111"},
        },
    }
    sandbox.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))
    # WHEN the preflight gathers the stack's facts without --account
    _, _, facts = aws_checks.stack_facts(stack)
    # THEN it expects that account to own the bucket (S3's ExpectedBucketOwner), not the caller's
    assert facts.expected_owner == "111111111111"
