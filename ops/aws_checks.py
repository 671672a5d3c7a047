"""The facts `ops.preflight` checks, read from S3 and KMS with boto3 (read-only calls only).

A part that cannot be read (AccessDenied on the key policy, say) is recorded as not checked rather than failing the
whole preflight; a bucket that does not exist, or cannot be read at all, is a `PreflightError` (one line, exit 2).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ops.preflight import BucketFacts
from replay.aws_stack import AwsProblem, explain, open_stack
from stacks.outputs import (
    ARTIFACT_BUCKET_ACCOUNT,
    ARTIFACT_BUCKET_KEY_ARN,
    ARTIFACT_BUCKET_POLICY,
    BUCKET_NAME,
    IMPORTED_BUCKET_NAME,
)

_NO_ENCRYPTION = "ServerSideEncryptionConfigurationNotFoundError"


class PreflightError(RuntimeError):
    """The bucket (or the stack) cannot be read at all; the message says what to do."""


def stack_facts(stack_name: str, *, region: str | None = None, account: str = "") -> tuple[str, str, BucketFacts]:
    """(bucket, key ARN, facts) of a deployed stack's bucket, named by its outputs."""
    try:
        stack = open_stack(stack_name, region=region)
    except AwsProblem as problem:
        raise PreflightError(f"stack {stack_name!r}: {problem}") from None
    outputs = stack.outputs
    bucket = outputs.get(IMPORTED_BUCKET_NAME) or outputs.get(BUCKET_NAME)
    if not bucket:
        raise PreflightError(f"stack {stack_name!r} has no {BUCKET_NAME} output: deploy this version first")
    key_arn = outputs.get(ARTIFACT_BUCKET_KEY_ARN, "")
    return (
        bucket,
        key_arn,
        gather(
            stack.client("s3"),
            stack.client("kms"),
            bucket,
            key_arn=key_arn,
            region=stack.region,
            # A stack with a bucket in another account names it in an output (older ones only in their context: then
            # --account decides); else the bucket is the stack's account's.
            expected_owner=account
            or outputs.get(ARTIFACT_BUCKET_ACCOUNT, "")
            or ("" if ARTIFACT_BUCKET_POLICY in outputs else _caller_account(stack.client("sts"))),
        ),
    )


def bucket_facts(bucket: str, *, key_arn: str = "", region: str | None = None, account: str = "") -> BucketFacts:
    try:
        session = boto3.Session(region_name=region)
    except BotoCoreError as error:
        raise PreflightError(str(explain(error, doing="open an AWS session"))) from None
    return gather(
        session.client("s3"),
        session.client("kms"),
        bucket,
        key_arn=key_arn,
        region=session.region_name,
        expected_owner=account or _caller_account(session.client("sts")),
    )


def _caller_account(sts: Any) -> str:
    """The caller's account (the stack's, for `--stack`), or "" when STS does not say (the owner is then not checked)."""
    try:
        return str(sts.get_caller_identity()["Account"])
    except (BotoCoreError, ClientError, KeyError):
        return ""


def owner_matches(s3: Any, bucket: str, expected_owner: str) -> bool | None:
    """Whether `expected_owner` owns `bucket`: HeadBucket with ExpectedBucketOwner, which S3 answers with 403 when
    another account owns it ("Verifying bucket ownership with bucket owner condition", S3 User Guide:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-owner-condition.html). Call it after a plain
    HeadBucket succeeded, so a 403 here is the owner and not the caller's permissions. None: S3 said something else.
    """
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=expected_owner)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("403", "AccessDenied"):
            return False
        return None
    except BotoCoreError:
        return None
    return True


def gather(
    s3: Any, kms: Any, bucket: str, *, key_arn: str = "", region: str | None = None, expected_owner: str = ""
) -> BucketFacts:
    try:
        s3.head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as error:
        code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
        if code in ("404", "NoSuchBucket"):
            raise PreflightError(f"bucket {bucket!r} does not exist (check artifactBucketName / --bucket)") from None
        raise PreflightError(str(explain(error, doing=f"read bucket {bucket!r}"))) from None
    unreadable: dict[str, str] = {}

    def read(name: str, call: Any) -> Any:
        try:
            return call()
        except (BotoCoreError, ClientError) as error:
            if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") == _NO_ENCRYPTION:
                return {}  # no rule: S3's own default, SSE-S3
            unreadable[name] = str(explain(error, doing=f"read the {name}"))
            return None

    owner = owner_matches(s3, bucket, expected_owner) if expected_owner else None
    location = read("bucket's region", lambda: s3.get_bucket_location(Bucket=bucket))
    notifications = read("notification configuration", lambda: s3.get_bucket_notification_configuration(Bucket=bucket))
    versioning = read("versioning", lambda: s3.get_bucket_versioning(Bucket=bucket))
    encryption = read("default encryption", lambda: s3.get_bucket_encryption(Bucket=bucket))
    policy = read("key policy", lambda: kms.get_key_policy(KeyId=key_arn, PolicyName="default")) if key_arn else None
    return BucketFacts(
        bucket=bucket,
        notifications=None
        if notifications is None
        else {k: v for k, v in notifications.items() if k != "ResponseMetadata"},
        versioning=None if versioning is None else versioning.get("Status", ""),
        encryption=_default_encryption(encryption),
        key_policy=json.loads(policy["Policy"]) if policy else None,
        region=_region(location),
        stack_region=region,
        unreadable=unreadable,
        expected_owner=expected_owner,
        owner_matches=owner,
    )


def _region(location: dict[str, Any] | None) -> str | None:
    """GetBucketLocation's answer as a region: none means us-east-1, and "EU" the old name of eu-west-1."""
    if location is None:
        return None
    constraint = location.get("LocationConstraint") or "us-east-1"
    return "eu-west-1" if constraint == "EU" else constraint


def _default_encryption(response: dict[str, Any] | None) -> tuple[str, str] | None:
    rules = (response or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if response is not None and not rules:
        return ("AES256", "")  # S3 encrypts every new object with SSE-S3 when no rule says otherwise
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if default:
            return (default.get("SSEAlgorithm", ""), default.get("KMSMasterKeyID", ""))
    return None
