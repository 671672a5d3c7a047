"""Least privilege: the writer policy, the function roles, and no wildcard actions anywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stacks.route_access import access_for
from tests.infrastructure.conftest import SECRET_ARN, SECRET_KEY_ARN, Synth
from tests.infrastructure.template_queries import (
    as_list,
    policy_statements,
    role_statements,
    role_statements_by_id,
    statement_actions,
)

IAM_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def _allow_statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    """(logical id, statement) for every Allow statement of every IAM policy and inline role policy."""
    found = []
    for logical_id, resource in synth.template_json["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in IAM_POLICY_TYPES:
            documents.append(props["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents += [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        for document in documents:
            found += [(logical_id, s) for s in policy_statements(document) if s["Effect"] == "Allow"]
    return found


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_no_iam_statement_grants_a_wildcard_action(synth_name: str, request: pytest.FixtureRequest):
    # GIVEN a synthesized stack (default and fully customised)
    synth: Synth = request.getfixturevalue(synth_name)

    # WHEN we collect every Allow statement of every IAM policy
    statements = _allow_statements(synth)

    # THEN no action is `*` or `service:*` (or any other wildcard)
    assert statements
    wildcard = [(lid, s["Action"]) for lid, s in statements if any("*" in a for a in as_list(s["Action"]))]
    assert wildcard == []


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_star_resources_are_only_the_ones_aws_apis_require(synth_name: str, request: pytest.FixtureRequest):
    # GIVEN a synthesized stack
    synth: Synth = request.getfixturevalue(synth_name)

    # WHEN we collect statements whose resource is literally `*`
    star = [s for _, s in _allow_statements(synth) if "*" in as_list(s.get("Resource"))]

    # THEN only X-Ray's trace-writing actions (which have no resource-level permissions) use it, only with tracing,
    # and the network-interface actions Lambda needs for a function in a VPC, only with a VPC
    xray = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    vpc = {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }
    assert statement_actions(star) <= xray | vpc
    assert bool(statement_actions(star) & xray) == synth.stack.config.tracing
    assert bool(statement_actions(star) & vpc) == bool(synth.stack.config.vpc_subnet_ids)


def test_writer_policy_writes_only_under_the_watched_prefixes_and_never_deletes(default_synth: Synth):
    # GIVEN the writer managed policy
    writer = default_synth.autopilot.writer
    bucket_id = default_synth.logical_id(default_synth.autopilot.artifacts.bucket)
    document = default_synth.template_json["Resources"][default_synth.logical_id(writer.policy)]["Properties"]
    statements = policy_statements(document["PolicyDocument"])

    # WHEN we index its statements by action
    by_action = {action: s for s in statements for action in as_list(s["Action"])}

    # THEN it can put/get objects only under models/ and mlflow/, list only those prefixes, and never delete
    assert not any("Delete" in action for action in by_action)
    object_arns = [
        {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, f"/{prefix}/*"]]} for prefix in ("mlflow", "models")
    ]
    for action in ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"):
        assert sorted(as_list(by_action[action]["Resource"]), key=str) == sorted(object_arns, key=str)
    list_bucket = by_action["s3:ListBucket"]
    assert list_bucket["Resource"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    assert list_bucket["Condition"] == {"StringLike": {"s3:prefix": ["models", "models/*", "mlflow", "mlflow/*"]}}
    assert by_action["s3:GetBucketLocation"]["Resource"] == {"Fn::GetAtt": [bucket_id, "Arn"]}


def test_writer_policy_uses_the_key_only_through_s3(default_synth: Synth):
    # GIVEN the writer managed policy
    writer = default_synth.autopilot.writer
    key_id = default_synth.logical_id(default_synth.autopilot.artifacts.key)
    document = default_synth.template_json["Resources"][default_synth.logical_id(writer.policy)]["Properties"]

    # WHEN we find its KMS statement
    (kms,) = (
        s
        for s in policy_statements(document["PolicyDocument"])
        if any(a.startswith("kms:") for a in as_list(s["Action"]))
    )

    # THEN it covers data-key generation and decryption of the bucket key, via S3 only
    assert set(kms["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt"}
    assert kms["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
    via_service = kms["Condition"]["StringEquals"]["kms:ViaService"]
    assert via_service["Fn::Join"][1][0] == "s3."


def test_writer_prefix_follows_the_artifact_root_prefix_context(custom_synth: Synth):
    # GIVEN a stack with artifactRootPrefix = "teams/mlflow"
    writer = custom_synth.autopilot.writer
    document = custom_synth.template_json["Resources"][custom_synth.logical_id(writer.policy)]["Properties"]

    # WHEN we read the ListBucket condition
    (list_bucket,) = (s for s in policy_statements(document["PolicyDocument"]) if s["Action"] == "s3:ListBucket")

    # THEN it allows exactly the two watched prefixes
    assert list_bucket["Condition"]["StringLike"]["s3:prefix"] == [
        "models",
        "models/*",
        "teams/mlflow",
        "teams/mlflow/*",
    ]


def test_databricks_instance_profile_carries_the_writer_policy(default_synth: Synth, custom_synth: Synth):
    # GIVEN the default stack (no profile) and one with databricksInstanceProfile = true
    writer_ref = {"Ref": custom_synth.logical_id(custom_synth.autopilot.writer.policy)}

    # WHEN we look for EC2 roles and instance profiles
    default_profiles = default_synth.resources("AWS::IAM::InstanceProfile")
    (profile,) = custom_synth.resources("AWS::IAM::InstanceProfile").values()
    (role_id,) = (ref["Ref"] for ref in profile["Properties"]["Roles"])
    role = custom_synth.template_json["Resources"][role_id]["Properties"]

    # THEN only the second has one, whose role EC2 assumes and which has the writer policy and nothing else
    assert default_profiles == {}
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}}
    ]
    assert role["ManagedPolicyArns"] == [writer_ref]
    assert "Policies" not in role


def test_register_role_publishes_only_to_the_project_bus(default_synth: Synth):
    # GIVEN the register function's role
    pipeline = default_synth.autopilot.pipelines["register"]
    statements = role_statements(default_synth, pipeline.role)

    # WHEN we find what it may PutEvents to
    put_events = [s for s in statements if "events:PutEvents" in as_list(s["Action"])]
    resources = [r for s in put_events for r in as_list(s["Resource"])]

    # THEN that is the project bus alone: not the default bus, not `*`
    assert resources == [{"Fn::GetAtt": [default_synth.logical_id(default_synth.autopilot.buses.project_bus), "Arn"]}]
    assert "default" not in str(resources)


def test_register_role_has_exactly_the_permissions_its_route_needs(default_synth: Synth):
    # GIVEN the register function's role in the default stack (no secret, no tracing)
    pipeline = default_synth.autopilot.pipelines["register"]

    # WHEN we collect its actions
    actions = statement_actions(role_statements(default_synth, pipeline.role))

    # THEN they are the route's needs plus what the SQS event source grants, nothing more
    assert access_for("register").read_artifacts
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "kms:Decrypt",
        "events:PutEvents",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "sqs:SendMessage",
        # granted by the SQS event source
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }


def test_register_role_sends_only_to_its_own_queues(default_synth: Synth):
    # GIVEN the register pipeline
    pipeline = default_synth.autopilot.pipelines["register"]

    # WHEN we find the role's SendMessage resources
    send = [s for s in role_statements(default_synth, pipeline.role) if "sqs:SendMessage" in as_list(s["Action"])]

    # THEN they are its queue (re-enqueue with delay) and its dead-letter queue (immediate dead-lettering)
    assert sorted(r["Fn::GetAtt"][0] for s in send for r in as_list(s["Resource"])) == sorted(
        default_synth.logical_id(q) for q in (pipeline.queue, pipeline.dead_letter_queue)
    )


def test_register_role_reads_artifacts_by_prefix_and_decrypts_only_through_s3(default_synth: Synth):
    # GIVEN the register function's role
    pipeline = default_synth.autopilot.pipelines["register"]
    statements = role_statements(default_synth, pipeline.role)
    bucket_id = default_synth.logical_id(default_synth.autopilot.artifacts.bucket)

    # WHEN we find the S3 read, list and KMS statements
    (read,) = (s for s in statements if "s3:GetObject" in as_list(s["Action"]))
    (listing,) = (s for s in statements if s["Action"] == "s3:ListBucket")
    (decrypt,) = (s for s in statements if s["Action"] == "kms:Decrypt")

    # THEN reads are limited to the watched prefixes, listing to those prefixes, decryption to S3's use of the key
    assert sorted(r["Fn::Join"][1][1] for r in read["Resource"]) == ["/mlflow/*", "/models/*"]
    assert all(r["Fn::Join"][1][0] == {"Fn::GetAtt": [bucket_id, "Arn"]} for r in read["Resource"])
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models", "models/*", "mlflow", "mlflow/*"]}}
    assert "kms:ViaService" in decrypt["Condition"]["StringEquals"]


def test_secret_is_readable_only_when_configured_and_only_that_secret(default_synth: Synth, custom_synth: Synth):
    # GIVEN the default stack (no secret) and one with mlflowCredentialsSecretArn set
    default_role = default_synth.autopilot.pipelines["register"].role
    custom_role = custom_synth.autopilot.pipelines["register"].role

    # WHEN we look for secretsmanager statements
    default_secret = [s for s in role_statements(default_synth, default_role) if "secretsmanager" in str(s["Action"])]
    custom_secret = [s for s in role_statements(custom_synth, custom_role) if "secretsmanager" in str(s["Action"])]

    # THEN only the second can read a secret: GetSecretValue on exactly the configured ARN
    assert default_secret == []
    assert [(s["Action"], s["Resource"]) for s in custom_secret] == [("secretsmanager:GetSecretValue", SECRET_ARN)]


def test_exactly_the_roles_that_read_the_secret_may_decrypt_it_with_its_key(default_synth: Synth, custom_synth: Synth):
    # GIVEN the custom stack (its secret under a customer managed key) and the default one (no secret, no key)
    def roles_with(synth: Synth, wanted: Callable[[dict], bool]) -> set[str]:
        return {
            role_id
            for role_id in synth.resources("AWS::IAM::Role")
            if any(wanted(s) for s in role_statements_by_id(synth, role_id))
        }

    def reads_secret(s: dict) -> bool:
        return "secretsmanager:GetSecretValue" in as_list(s["Action"]) and s["Resource"] == SECRET_ARN

    def decrypts_with_key(s: dict) -> bool:
        return SECRET_KEY_ARN in as_list(s["Resource"])

    # WHEN we find the roles that read the secret and the roles that may use its key
    readers, decrypters = roles_with(custom_synth, reads_secret), roles_with(custom_synth, decrypts_with_key)

    # THEN they are the same roles (the route functions'), and each may only decrypt, only through Secrets Manager in
    # the secret's region, only for that secret (its encryption context)
    pipelines = custom_synth.autopilot.pipelines
    assert readers == {
        custom_synth.logical_id(p.role) for n, p in pipelines.items() if access_for(n).mlflow_credentials
    }
    assert decrypters == readers
    for role_id in decrypters:
        [statement] = [s for s in role_statements_by_id(custom_synth, role_id) if decrypts_with_key(s)]
        assert statement["Action"] == "kms:Decrypt"
        assert statement["Resource"] == SECRET_KEY_ARN
        assert statement["Condition"] == {
            "StringEquals": {
                "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
                "kms:EncryptionContext:SecretARN": SECRET_ARN,
            }
        }
    # AND without the key setting no role names a key of the secret
    assert roles_with(default_synth, decrypts_with_key) == set()


def test_xray_permissions_come_only_with_tracing(default_synth: Synth, custom_synth: Synth):
    # GIVEN the default stack (tracing off) and one with tracing = true
    default_role = default_synth.autopilot.pipelines["register"].role
    custom_role = custom_synth.autopilot.pipelines["register"].role

    # WHEN we collect the roles' actions
    default_actions = statement_actions(role_statements(default_synth, default_role))
    custom_actions = statement_actions(role_statements(custom_synth, custom_role))

    # THEN X-Ray actions appear only with tracing
    assert not any(a.startswith("xray:") for a in default_actions)
    assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} <= custom_actions


def test_aliases_role_has_exactly_the_permissions_its_route_needs(default_synth: Synth):
    # GIVEN the aliases function's role in the default stack (no secret, no tracing)
    pipeline = default_synth.autopilot.pipelines["aliases"]

    # WHEN we collect its actions
    actions = statement_actions(role_statements(default_synth, pipeline.role))

    # THEN it reads artifacts (metrics.json of the candidate and of the alias holder), publishes, dead-letters, and
    # drains its queue; it keeps no idempotency records
    access = access_for("aliases")
    assert (access.read_artifacts, access.idempotency, access.requeue, access.dead_letter) == (True, False, False, True)
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "kms:Decrypt",
        "events:PutEvents",
        "sqs:SendMessage",
        # granted by the SQS event source
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }


def test_aliases_role_cannot_write_the_idempotency_table_nor_send_to_its_own_queue(default_synth: Synth):
    # GIVEN the aliases pipeline and the idempotency table
    pipeline = default_synth.autopilot.pipelines["aliases"]
    statements = role_statements(default_synth, pipeline.role)
    table_id = default_synth.logical_id(default_synth.autopilot.idempotency.table)

    # WHEN we look for DynamoDB statements and for what it may SendMessage to
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    send = [r for s in statements if "sqs:SendMessage" in as_list(s["Action"]) for r in as_list(s["Resource"])]

    # THEN it has no DynamoDB access at all, and sends only to its FIFO dead-letter queue: not to its own queue (a
    # FIFO queue cannot re-enqueue with a delay) nor to the delivery dead-letter queue (EventBridge's)
    assert dynamodb == []
    assert table_id not in str(statements)
    assert send == [{"Fn::GetAtt": [default_synth.logical_id(pipeline.dead_letter_queue), "Arn"]}]


def test_aliases_role_reads_the_configured_secret_only_when_there_is_one(custom_synth: Synth):
    # GIVEN the stack with mlflowCredentialsSecretArn set
    role = custom_synth.autopilot.pipelines["aliases"].role

    # WHEN we look for secretsmanager statements
    secret = [s for s in role_statements(custom_synth, role) if "secretsmanager" in str(s["Action"])]

    # THEN the aliases function (it moves aliases in MLflow) may read exactly that secret
    assert [(s["Action"], s["Resource"]) for s in secret] == [("secretsmanager:GetSecretValue", SECRET_ARN)]
