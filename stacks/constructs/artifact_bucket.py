"""The S3 bucket ML teams write MLflow models into, its KMS key and its access-log bucket.

Why a customer managed key rather than SSE-S3: every decrypt of a model is then a CloudTrail event naming the
principal; the key policy is a second gate next to IAM and the bucket policy; and disabling the key revokes
access to every object at once. The S3 bucket key keeps the KMS request cost flat.

Why the log bucket uses SSE-S3: S3 server access logging refuses targets encrypted with the AWS managed `aws/s3`
key (CDK rejects it at synth), and a customer managed key would need a key-policy grant to the logging service
for logs that hold no model content. SSE-S3 needs neither.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constants import ABORT_INCOMPLETE_MULTIPART_UPLOAD_AFTER, ACCESS_LOG_EXPIRATION


class ArtifactBucket(Construct):
    """`bucket` (KMS-encrypted with `key`, versioned, EventBridge notifications on) and `access_log_bucket`."""

    imported = False

    def __init__(self, scope: Construct, construct_id: str, *, key_alias: str, noncurrent_version_expiration_days: int):
        super().__init__(scope, construct_id)
        self.key = self._build_key(key_alias)
        self.access_log_bucket = self._build_access_log_bucket()
        self.bucket = self._build_bucket(noncurrent_version_expiration_days)

    def _build_key(self, alias: str) -> kms.Key:
        return kms.Key(
            self,
            "Key",
            description="Encrypts the registry-autopilot artifact bucket (MLflow models)",
            alias=alias,
            enable_key_rotation=True,
            # Deleting the key would make every model unreadable: it outlives the stack.
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _build_access_log_bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            # Log objects are written once and never changed: expiry instead of versioning.
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=ACCESS_LOG_EXPIRATION)],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _build_bucket(self, noncurrent_version_expiration_days: int) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="artifact-bucket/",
            event_bridge_enabled=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_MULTIPART_UPLOAD_AFTER,
                    expired_object_delete_marker=True,
                )
            ],
            # Models are the product: deleting the stack must never delete them.
            removal_policy=RemovalPolicy.RETAIN,
        )


class ImportedArtifactBucket(Construct):
    """An existing bucket (`artifactBucketName`), imported and never owned, with its SSE-KMS key when it has one.

    `s3.Bucket.from_bucket_attributes` creates no resource: the stack writes no bucket policy, lifecycle rule,
    notification or retention setting on it, and `cdk destroy` leaves it as it was. Its EventBridge delivery must be
    on already (`python -m ops preflight --bucket NAME` checks it), unless `artifactBucketEventBridge=enable` asks
    the stack to turn it on (`stacks.constructs.bucket_event_bridge`). `key` is None for a bucket encrypted with
    SSE-S3: S3 then needs no KMS permission from anyone.

    A host app may give the bucket (and key) as constructs instead (`bucket`, `key`: the construct's props of the
    same names); they are used as given. A bucket in another account (`account`, context `artifactBucketAccount`) is
    imported with that account, so CDK knows its grants cannot reach its resource policy.
    """

    access_log_bucket: s3.IBucket | None = None
    imported = True

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str = "",
        key_arn: str = "",
        account: str = "",
        bucket: s3.IBucket | None = None,
        key: kms.IKey | None = None,
    ):
        super().__init__(scope, construct_id)
        self.key: kms.IKey | None = key or (kms.Key.from_key_arn(self, "Key", key_arn) if key_arn else None)
        if bucket is not None:
            self.bucket: s3.IBucket = bucket
            self.key = self.key or bucket.encryption_key
            return
        self.bucket = s3.Bucket.from_bucket_attributes(
            self, "Bucket", bucket_name=bucket_name, encryption_key=self.key, account=account or None
        )
