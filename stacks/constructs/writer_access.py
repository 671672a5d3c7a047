"""What a training job needs to write models into the artifact bucket, and nothing more.

A managed policy that teams attach to their job roles: read, write and list under `models/` and the MLflow
artifact root only, with the KMS key usable only through S3. It grants no delete (versioning keeps every
upload; lifecycle rules clean up) and no other part of the bucket. Optionally, an EC2 role with an instance
profile carrying the same policy, for Databricks clusters.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.routing import PLAIN_UPLOAD_PREFIX
from stacks.nag import acknowledge, wildcard_resource_finding


def artifact_prefixes(artifact_root_prefix: str) -> tuple[str, ...]:
    """The key prefixes the pipeline watches: plain uploads and MLflow's artifact root."""
    return (PLAIN_UPLOAD_PREFIX, artifact_root_prefix)


def object_arns(bucket: s3.IBucket, prefixes: tuple[str, ...]) -> list[str]:
    return [bucket.arn_for_objects(f"{prefix}/*") for prefix in prefixes]


def list_bucket_statement(bucket: s3.IBucket, prefixes: tuple[str, ...]) -> iam.PolicyStatement:
    """s3:ListBucket, but only for listings under the given prefixes (and of the prefixes themselves)."""
    return iam.PolicyStatement(
        sid="ListArtifactPrefixes",
        actions=["s3:ListBucket"],
        resources=[bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": [p for prefix in prefixes for p in (prefix, f"{prefix}/*")]}},
    )


def kms_via_s3_statement(key: kms.IKey, actions: list[str]) -> iam.PolicyStatement:
    """Use of the bucket key only through S3 in this region (not a general decrypt capability)."""
    return iam.PolicyStatement(
        sid="UseBucketKeyThroughS3",
        actions=actions,
        resources=[key.key_arn],
        conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.{Aws.URL_SUFFIX}"}},
    )


class WriterAccess(Construct):
    """`policy`: the writer managed policy; `instance_profile`: the optional Databricks instance profile."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        key: kms.IKey | None,
        artifact_root_prefix: str,
        databricks_instance_profile: bool,
    ):
        super().__init__(scope, construct_id)
        self.prefixes = artifact_prefixes(artifact_root_prefix)
        self.policy = self._build_policy(bucket, key)
        self.instance_profile: iam.InstanceProfile | None = None
        if databricks_instance_profile:
            self.instance_profile = self._build_instance_profile()

    def _build_policy(self, bucket: s3.IBucket, key: kms.IKey | None) -> iam.ManagedPolicy:
        # No key: an existing bucket with SSE-S3 (artifactBucketName without artifactBucketKeyArn).
        key_actions = ["kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt"]
        key_statements = [kms_via_s3_statement(key, key_actions)] if key is not None else []
        policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Write MLflow models under {', '.join(p + '/' for p in self.prefixes)} of the artifact bucket "
            f"of {Stack.of(self).stack_name}",
            statements=[
                iam.PolicyStatement(
                    sid="ReadWriteArtifacts",
                    actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                    resources=object_arns(bucket, self.prefixes),
                ),
                list_bucket_statement(bucket, self.prefixes),
                iam.PolicyStatement(
                    sid="LocateBucket", actions=["s3:GetBucketLocation"], resources=[bucket.bucket_arn]
                ),
                *key_statements,
            ],
        )
        reason = (
            "Object-level S3 actions can only be scoped by key: the wildcard is the watched prefix ({}/), where "
            "training jobs write model artifacts of arbitrary names. No delete, no other prefix of the bucket."
        )
        acknowledge(
            policy,
            {
                wildcard_resource_finding(self, arn): reason.format(prefix)
                for prefix, arn in zip(self.prefixes, object_arns(bucket, self.prefixes), strict=True)
            },
        )
        return policy

    def _build_instance_profile(self) -> iam.InstanceProfile:
        role = iam.Role(
            self,
            "DatabricksRole",
            description="Databricks cluster instances that log MLflow models into the artifact bucket",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[self.policy],
        )
        return iam.InstanceProfile(self, "DatabricksInstanceProfile", role=role)
