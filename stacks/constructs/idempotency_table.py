"""The Powertools idempotency table shared by the functions (key `id`, TTL on `expiration`: Powertools' defaults).

Encryption: the AWS managed key (`aws/dynamodb`). Items hold a hash of the artifact identity and the small result
of a registration (model name, version), never model content or credentials, so a second key gate adds nothing,
while coupling every table call to the bucket key's policy would add a failure mode. Uses of `aws/dynamodb`
are still logged in CloudTrail.

Removal: DESTROY. Records live 48 hours (TTL) and only guard against duplicate deliveries while the pipeline
runs; with the stack gone there is nothing left to guard, and a retained table would be an orphan.
Point-in-time recovery stays on anyway: it is cheap for a table this size and lets an operator inspect what the
functions saw during an incident.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

PARTITION_KEY = "id"
TTL_ATTRIBUTE = "expiration"


class IdempotencyTable(Construct):
    def __init__(self, scope: Construct, construct_id: str):
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.DESTROY,
        )
