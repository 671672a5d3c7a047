"""The preflight's checks (`ops.preflight.check`) on the facts S3 and KMS would report, and the merged configuration."""

from __future__ import annotations

import json

from functions.domain.bucket_notifications import EVENT_BRIDGE, destination_count, with_event_bridge
from ops.preflight import BucketFacts, check, ready, report

KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666"
QUEUE = {"Id": "audit", "QueueArn": "arn:aws:sqs:eu-west-1:123456789012:audit", "Events": ["s3:ObjectCreated:*"]}
IAM_DELEGATION = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def _ready(**changes: object) -> BucketFacts:
    facts: dict[str, object] = {
        "bucket": "ml-artifacts",
        "notifications": {EVENT_BRIDGE: {}},
        "versioning": "Enabled",
        "encryption": ("aws:kms", KEY_ARN),
        "key_policy": {"Statement": [IAM_DELEGATION]},
    }
    return BucketFacts(**{**facts, **changes})  # type: ignore[arg-type]


def test_a_ready_bucket_has_no_problem():
    # GIVEN a bucket with EventBridge, versioning, the given key and a key policy delegating to IAM
    # WHEN it is checked
    problems = check(_ready(), key_arn=KEY_ARN)
    # THEN there is none, and the report says ready
    assert problems == []
    assert report(_ready(), problems) == ["bucket ml-artifacts: ready"]


def test_the_merged_configuration_keeps_every_notification_and_drops_the_response_metadata():
    # GIVEN a GetBucketNotificationConfiguration response with a queue and the response's metadata
    response = {"QueueConfigurations": [QUEUE], "ResponseMetadata": {"HTTPStatusCode": 200}}
    # WHEN EventBridge is added
    merged = with_event_bridge(response)
    # THEN the queue stays, EventBridge is on, nothing else is sent
    assert merged == {"QueueConfigurations": [QUEUE], EVENT_BRIDGE: {}}
    assert destination_count(merged) == 1


def test_eventbridge_off_prints_the_merged_configuration_not_an_empty_one():
    # GIVEN a bucket with a queue notification and EventBridge off
    facts = _ready(notifications={"QueueConfigurations": [QUEUE]})
    # WHEN it is checked
    (problem,) = check(facts, key_arn=KEY_ARN)
    # THEN the fix puts the whole configuration back with EventBridge added
    assert problem.what == "EventBridge notifications"
    payload = problem.fix.split("--notification-configuration ", 1)[1].strip("'")
    assert json.loads(payload) == {"QueueConfigurations": [QUEUE], EVENT_BRIDGE: {}}
    assert "keeps the bucket's 1 other notification(s)" in problem.cost


def test_the_aws_managed_s3_key_and_sse_s3_need_no_key_arn():
    # GIVEN buckets encrypted with SSE-S3 and with the AWS managed aws/s3 key, and no key ARN given
    for encryption in (("AES256", ""), ("aws:kms", ""), ("aws:kms", "arn:aws:kms:eu-west-1:123:alias/aws/s3")):
        # WHEN each is checked
        # THEN nothing is missing: S3 uses those keys for any principal of the account
        assert check(_ready(encryption=encryption, key_policy=None)) == []


def test_a_key_given_by_id_or_arn_matches_the_same_key():
    # GIVEN a bucket whose default encryption names the key by id
    facts = _ready(encryption=("aws:kms", KEY_ARN.rsplit("/", 1)[1]))
    # THEN the key ARN given is the same key
    assert check(facts, key_arn=KEY_ARN) == []


def test_a_key_policy_naming_the_account_for_the_needed_actions_is_enough():
    # GIVEN a key policy granting the account root decrypt and generate data key (not kms:*)
    statement = {
        **IAM_DELEGATION,
        "Principal": {"AWS": "123456789012"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
    }
    # THEN IAM policies can grant the key
    assert check(_ready(key_policy={"Statement": [statement]}), key_arn=KEY_ARN) == []


def test_what_could_not_be_read_is_reported_not_guessed():
    # GIVEN a key policy the caller may not read
    facts = _ready(key_policy=None, unreadable={"key policy": "not allowed to read the key policy: AccessDenied"})
    # WHEN the report is printed
    lines = report(facts, check(facts, key_arn=KEY_ARN))
    # THEN it says so and still calls the bucket ready on what it could check
    assert lines == [
        "NOT CHECKED key policy: not allowed to read the key policy: AccessDenied",
        "bucket ml-artifacts: ready",
    ]


def test_a_bucket_whose_notifications_cannot_be_read_is_not_called_ready():
    # GIVEN a caller who may not read the bucket's notification configuration
    facts = _ready(notifications=None, unreadable={"notification configuration": "not allowed: AccessDenied"})
    # WHEN it is checked
    problems = check(facts, key_arn=KEY_ARN)
    # THEN no problem is guessed, but the verdict is "not verified"
    assert problems == []
    assert not ready(facts, problems)
    assert report(facts, problems)[-1].startswith("bucket ml-artifacts: not verified")


def test_a_bucket_in_another_region_than_the_stack_is_named_with_the_region_to_deploy_in():
    # GIVEN a bucket in eu-central-1 and a caller (the stack) in eu-west-1
    facts = _ready(region="eu-central-1", stack_region="eu-west-1")
    # WHEN it is checked
    (problem,) = check(facts, key_arn=KEY_ARN)
    # THEN the problem says where its events go and which region to deploy in
    assert "default bus of eu-central-1" in problem.cost
    assert "-c region=eu-central-1" in problem.fix


def test_a_bucket_of_another_account_than_declared_is_one_line_and_not_ready():
    # GIVEN S3 refused a read expecting the declared owner (ExpectedBucketOwner answered 403)
    facts = _ready(expected_owner="111122223333", owner_matches=False)
    # WHEN it is checked
    problems = check(facts, key_arn=KEY_ARN)
    # THEN one line names the declared account and what it costs, and the preflight fails (exit status 2)
    (line,) = [line for line in report(facts, problems) if line.startswith("MISSING")]
    assert line.startswith("MISSING the bucket in the declared account 111122223333: ")
    assert "-c artifactBucketAccount=" in line
    assert not ready(facts, problems)
    # ... while an owner S3 accepted, or one not checked, is no problem
    assert check(_ready(expected_owner="111122223333", owner_matches=True), key_arn=KEY_ARN) == []
    assert check(_ready(owner_matches=None), key_arn=KEY_ARN) == []
