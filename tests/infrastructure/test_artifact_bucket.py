"""The artifact bucket, its key and its access-log bucket."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infrastructure.conftest import Synth


def _tls_deny_statement(bucket_id: str) -> dict:
    return Match.object_like(
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Principal": {"AWS": "*"},
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Resource": Match.array_with([{"Fn::GetAtt": [bucket_id, "Arn"]}]),
        }
    )


def test_artifact_bucket_is_versioned_kms_encrypted_private_and_owner_enforced(default_synth: Synth):
    # GIVEN the default stack
    artifacts = default_synth.autopilot.artifacts
    key_id = default_synth.logical_id(artifacts.key)

    # WHEN we read the artifact bucket's properties
    bucket = default_synth.template_json["Resources"][default_synth.logical_id(artifacts.bucket)]

    # THEN it is versioned, encrypted with the stack's key (bucket key on), closed to the public, ACL-free, retained
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
            },
        }
    ]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["DeletionPolicy"] == "Retain"


def test_bucket_key_rotates_and_outlives_the_stack(default_synth: Synth):
    # GIVEN the default template
    # WHEN we look for the artifact bucket's KMS key
    key = default_synth.template_json["Resources"][default_synth.logical_id(default_synth.autopilot.artifacts.key)]
    # THEN it is rotated yearly and retained on stack deletion (the other key, the alarm topic's, holds no data)
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_both_buckets_refuse_requests_without_tls(default_synth: Synth):
    # GIVEN the artifact and access-log buckets
    artifacts = default_synth.autopilot.artifacts
    template = default_synth.template

    for bucket in (artifacts.bucket, artifacts.access_log_bucket):
        bucket_id = default_synth.logical_id(bucket)
        # WHEN we read the bucket's policy
        # THEN it denies every request made without TLS
        template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": bucket_id},
                "PolicyDocument": {"Statement": Match.array_with([_tls_deny_statement(bucket_id)])},
            },
        )


def test_server_access_logs_go_to_an_sse_s3_log_bucket_that_expires_them(default_synth: Synth):
    # GIVEN the default stack
    artifacts = default_synth.autopilot.artifacts
    resources = default_synth.template_json["Resources"]
    log_bucket_id = default_synth.logical_id(artifacts.access_log_bucket)

    # WHEN we read both buckets
    bucket = resources[default_synth.logical_id(artifacts.bucket)]["Properties"]
    log_bucket = resources[log_bucket_id]["Properties"]

    # THEN the artifact bucket logs into the log bucket, which uses SSE-S3, is private and expires its logs
    assert bucket["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": log_bucket_id},
        "LogFilePrefix": "artifact-bucket/",
    }
    assert log_bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert log_bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert log_bucket["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert log_bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] > 0


def test_lifecycle_expires_noncurrent_versions_and_aborts_stale_multipart_uploads(default_synth: Synth):
    # GIVEN the default stack (noncurrentVersionExpirationDays = 90)
    bucket_id = default_synth.logical_id(default_synth.autopilot.artifacts.bucket)

    # WHEN we read the artifact bucket's lifecycle rules
    rules = default_synth.template_json["Resources"][bucket_id]["Properties"]["LifecycleConfiguration"]["Rules"]

    # THEN one rule expires old versions after the configured days and aborts uploads left open for a week
    assert rules == [
        {
            "Id": "expire-noncurrent-versions",
            "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            "ExpiredObjectDeleteMarker": True,
        }
    ]


def test_noncurrent_version_expiration_follows_context(custom_synth: Synth):
    # GIVEN a stack synthesized with noncurrentVersionExpirationDays = 30
    bucket_id = custom_synth.logical_id(custom_synth.autopilot.artifacts.bucket)

    # WHEN we read the lifecycle rule
    rule = custom_synth.template_json["Resources"][bucket_id]["Properties"]["LifecycleConfiguration"]["Rules"][0]

    # THEN it uses the context value
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}


def test_bucket_sends_its_events_to_eventbridge(default_synth: Synth):
    # GIVEN the default template
    bucket_id = default_synth.logical_id(default_synth.autopilot.artifacts.bucket)

    # WHEN we look at CDK's bucket-notifications custom resource
    # THEN it turns on EventBridge delivery for the artifact bucket
    default_synth.template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {"BucketName": {"Ref": bucket_id}, "NotificationConfiguration": {"EventBridgeConfiguration": {}}},
    )
