"""Opt-in (`artifactBucketEventBridge=enable`): turn an existing bucket's EventBridge delivery on, keeping the rest.

Not CDK's `enable_event_bridge_notification()`: its `Custom::S3BucketNotifications` handler has replaced or removed
other notifications of shared buckets (aws/aws-cdk #29653, #30607, #29004, #13797, #34100), its role ignores a
permissions boundary (#30179) and its delete gets stuck when the bucket is gone (#38167). This custom resource is
one small function of the project's own code (`functions.handlers.bucket_event_bridge`): Get-then-Put of the whole
configuration on create and update, nothing on delete (EventBridge stays on; see the handler for why).
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constants import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME
from stacks.constructs.function_code import FunctionCode
from stacks.constructs.function_role import function_role
from stacks.nag import acknowledge

HANDLER = "functions.handlers.bucket_event_bridge.lambda_handler"
RESOURCE_TYPE = "Custom::BucketEventBridge"


class BucketEventBridge(Construct):
    """`function` (the handler) and `resource` (the custom resource naming the bucket)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        code: FunctionCode,
        log_retention: logs.RetentionDays,
    ):
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention)
        role = function_role(
            self,
            "Role",
            description="registry-autopilot: turns the existing bucket's EventBridge notifications on",
            log_group=self.log_group,
            # The IAM actions of Get/PutBucketNotificationConfiguration, on this bucket only.
            statements=[
                iam.PolicyStatement(
                    sid="BucketNotificationConfiguration",
                    actions=["s3:GetBucketNotification", "s3:PutBucketNotification"],
                    resources=[bucket.bucket_arn],
                )
            ],
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="registry-autopilot: EventBridge notifications on for the existing bucket, others kept",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler=HANDLER,
            code=code.code,
            layers=code.layers,
            timeout=Duration.seconds(60),
            memory_size=256,
            role=role,
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=self.log_group,
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            properties={"BucketName": bucket.bucket_name},
        )
        acknowledge(
            self.function,
            {
                "Serverless-LambdaTracing": "Runs once per deployment for CloudFormation; its log says what it did.",
                "Serverless-LambdaDLQ": "Invoked synchronously by CloudFormation only, which hears of every failure.",
            },
        )
