"""Rules AWS enforces when the template is deployed or run, each checked across the whole template.

cfn-lint (`test_cfn_lint.py`) checks each literal value against its resource schema. What it cannot see is checked
here: limits on values that CloudFormation only resolves at deploy time (a `Ref` inside a policy or an environment
variable), rules between resources (a queue's visibility timeout against its function's timeout, a dead-letter
queue's type against its source queue's), the permissions a service checks when the resource is created, and the
names that grow with the stack name. Every test walks every resource of its type in three templates: cdk.json as
committed, every setting off its default (`custom`), and `custom` under the longest stack name the config accepts.

Values that CloudFormation resolves at deploy time (`Ref`, `Fn::GetAtt`, pseudo parameters) are counted as
`REFERENCE_BOUND` characters: more than the names, ARNs and URLs they resolve to here, even under the longest stack
name (the longest, an ARN that holds a generated log group name, is about 210 characters: partition, region,
account, the stack name, the logical id and a random suffix), so a size check holds for any account and region.

Each test's docstring names the AWS documentation the rule comes from.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import inspect
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.infrastructure.conftest import CUSTOM_CONTEXT, Synth, synthesize
from tests.infrastructure.template_queries import as_list, policy_statements, references

REFERENCE_BOUND = 256
LONGEST_STACK_NAME = "R" + "x" * 99
"""100 characters: the most `stacks.config` accepts for `stackName`."""

SYNTHS = ["default_synth", "custom_synth", "long_name_synth", "proof_synth"]

CFN_LINT_SCHEMAS = Path(__import__("cfnlint").__file__).parent / "data" / "schemas"


@pytest.fixture(scope="session")
def long_name_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Every setting off its default, under the longest stack name: the names derived from it are the longest."""
    return synthesize(
        {**CUSTOM_CONTEXT, "stackName": LONGEST_STACK_NAME}, outdir=tmp_path_factory.mktemp("long-name-cdk.out")
    )


@pytest.fixture(params=SYNTHS)
def synth(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(request.param)


# --- helpers: read the template as CloudFormation will resolve it -------------------------------------------------


def resources(synth: Synth, *types: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in synth.template_json["Resources"].items() if v["Type"] in types}


def props(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("Properties", {})


def materialize(value: Any) -> Any:
    """The value with every deploy-time reference replaced by a string of REFERENCE_BOUND characters."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(materialize(part)) for part in parts)
            if key in ("Ref", "Fn::GetAtt", "Fn::ImportValue", "Fn::Select", "Fn::Sub", "Fn::If", "Fn::Split"):
                return "x" * REFERENCE_BOUND
        return {k: materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v) for v in value]
    return value


def resolved_length(value: Any) -> int:
    """The most characters the value can have once CloudFormation resolves it (a string or a JSON document)."""
    concrete = materialize(value)
    return len(concrete) if isinstance(concrete, str) else len(compact_json(concrete))


def compact_json(document: Any) -> str:
    """The document as IAM and SQS count it: JSON without the whitespace between tokens."""
    return json.dumps(document, separators=(",", ":"))


def depends_on(synth: Synth, logical_id: str) -> set[str]:
    """Every resource CloudFormation creates before this one (DependsOn and references, transitively)."""
    all_resources = synth.template_json["Resources"]
    seen: set[str] = set()
    pending = [logical_id]
    while pending:
        current = all_resources[pending.pop()]
        direct = references(current.get("Properties", {}))
        explicit = current.get("DependsOn", [])
        direct |= {explicit} if isinstance(explicit, str) else set(explicit)
        for dependency in direct - seen:
            seen.add(dependency)
            pending.append(dependency)
    return seen


def the_resource(synth: Synth, value: Any, *types: str) -> str:
    """The one logical id of the given types that a value refers to."""
    (logical_id,) = (ref for ref in references(value) if synth.template_json["Resources"][ref]["Type"] in types)
    return logical_id


def event_source_mappings(synth: Synth) -> Iterator[tuple[str, dict[str, Any], str, str]]:
    """(mapping id, mapping properties, queue id, function id) for every SQS event source mapping."""
    for mapping_id, mapping in resources(synth, "AWS::Lambda::EventSourceMapping").items():
        p = props(mapping)
        queue_id = the_resource(synth, p["EventSourceArn"], "AWS::SQS::Queue")
        target = the_resource(synth, p["FunctionName"], "AWS::Lambda::Function", "AWS::Lambda::Alias")
        if synth.template_json["Resources"][target]["Type"] == "AWS::Lambda::Alias":
            alias = props(synth.template_json["Resources"][target])
            target = the_resource(synth, alias["FunctionName"], "AWS::Lambda::Function")
        yield mapping_id, p, queue_id, target


def rule_targets(synth: Synth) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for rule_id, rule in resources(synth, "AWS::Events::Rule").items():
        for target in props(rule).get("Targets", []):
            yield rule_id, props(rule), target


def allows(statement: dict[str, Any], action: str) -> bool:
    """The statement allows the action (exactly, or through a service or global wildcard)."""
    if statement.get("Effect") != "Allow":
        return False
    service = action.split(":")[0]
    return any(a in (action, f"{service}:*", "*") for a in as_list(statement.get("Action", [])))


def is_fifo(synth: Synth, queue_id: str) -> bool:
    return bool(props(synth.template_json["Resources"][queue_id]).get("FifoQueue"))


def queue_policy_statements(synth: Synth, queue_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in resources(synth, "AWS::SQS::QueuePolicy").values():
        if queue_id in references(props(policy)["Queues"]):
            found += policy_statements(props(policy)["PolicyDocument"])
    return found


def role_policy_documents(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    """The identity policies a role carries: its inline policies, AWS::IAM::Policy resources, managed policies."""
    role = props(synth.template_json["Resources"][role_id])
    documents = [p["PolicyDocument"] for p in role.get("Policies", [])]
    for policy in resources(synth, "AWS::IAM::Policy").values():
        if role_id in references(props(policy).get("Roles", [])):
            documents.append(props(policy)["PolicyDocument"])
    for managed in role.get("ManagedPolicyArns", []):
        for managed_id in references(managed):
            documents.append(props(synth.template_json["Resources"][managed_id])["PolicyDocument"])
    return documents


def role_policy_resources(synth: Synth, role_id: str) -> set[str]:
    return {
        policy_id
        for policy_id, policy in resources(synth, "AWS::IAM::Policy").items()
        if role_id in references(props(policy).get("Roles", []))
    }


@cache
def resource_schema(resource_type: str) -> dict[str, Any]:
    """The CloudFormation resource schema AWS publishes (the copy cfn-lint ships, us-east-1)."""
    index = json.loads((CFN_LINT_SCHEMAS / "providers" / "us-east-1.json").read_text())
    return json.loads((CFN_LINT_SCHEMAS / "resources" / f"{index[resource_type]}.json").read_text())


# --- CloudFormation ------------------------------------------------------------------------------------------------


def test_template_fits_cloudformation_quotas(synth: Synth):
    """CloudFormation quotas (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html):
    500 resources, 200 outputs, 200 parameters, 200 mappings; output names <= 255 characters; a template body of at
    most 51,200 bytes in the request or 1 MB from S3 (the CDK CLI uploads templates over 50 KiB to the bootstrap
    bucket, and this one is over that, so the 1 MB limit applies). Output descriptions must be literal strings of at
    most 1,024 bytes, export names <= 255 characters (Outputs section reference). (The archived copy of that page in
    awsdocs/aws-cloudformation-user-guide still lists 200 resources, 60 outputs and 460,800 bytes from S3; the
    templates here are within those too: at most 105 resources, 22 outputs, 167 KB as written to cdk.out.)
    """
    template = synth.template_json
    assert len(template["Resources"]) <= 500
    assert len(template.get("Outputs", {})) <= 200
    assert len(template.get("Parameters", {})) <= 200
    assert len(template.get("Mappings", {})) <= 200
    written = synth.outdir / f"{synth.stack.stack_name}.template.json"  # the file the CDK CLI uploads
    assert written.stat().st_size <= 1_000_000
    assert len(json.dumps(template).encode()) <= 1_000_000
    for name, output in template.get("Outputs", {}).items():
        assert re.fullmatch(r"[A-Za-z0-9]{1,255}", name), name
        description = output.get("Description", "")
        assert isinstance(description, str), name
        assert len(description.encode()) <= 1024, name
        if "Export" in output:
            assert resolved_length(output["Export"]["Name"]) <= 255, name


# --- SQS and the Lambda event source mappings that read it --------------------------------------------------------


def test_every_queue_a_function_reads_outlasts_six_function_timeouts(synth: Synth):
    """Lambda refuses to create an SQS event source mapping whose queue's visibility timeout is shorter than the
    function's timeout, and recommends at least six times the function timeout so a throttled batch can be retried
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html). SQS allows at most 12 hours
    (43,200 s; AWS::SQS::Queue VisibilityTimeout). Defaults when unset: 30 s visibility, 3 s function timeout.
    """
    mappings = list(event_source_mappings(synth))
    assert mappings, "the template has SQS event source mappings"
    for _, _, queue_id, function_id in mappings:
        visibility = props(synth.template_json["Resources"][queue_id]).get("VisibilityTimeout", 30)
        timeout = props(synth.template_json["Resources"][function_id]).get("Timeout", 3)
        assert 6 * timeout <= visibility <= 43_200, (queue_id, visibility, function_id, timeout)


def test_event_source_mappings_stay_inside_lambdas_sqs_limits(synth: Synth):
    """SQS event source mappings (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html and
    AWS::Lambda::EventSourceMapping): a FIFO queue takes a batch of at most 10 and no batching window; a standard
    queue up to 10,000, and more than 10 only with a batching window of at least 1 s; the window is at most 300 s
    (MaximumBatchingWindowInSeconds). Maximum concurrency is 2 to
    1,000 (ScalingConfig). The handlers return `batchItemFailures`; Lambda reads them only when the mapping lists
    `ReportBatchItemFailures`, otherwise a failed record counts as processed
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
    """
    for mapping_id, mapping, queue_id, _ in event_source_mappings(synth):
        batch = mapping.get("BatchSize", 10)
        window = mapping.get("MaximumBatchingWindowInSeconds", 0)
        if is_fifo(synth, queue_id):
            assert 1 <= batch <= 10, mapping_id
            assert "MaximumBatchingWindowInSeconds" not in mapping, mapping_id
        else:
            assert 1 <= batch <= 10_000, mapping_id
            assert batch <= 10 or window >= 1, mapping_id
        assert 0 <= window <= 300, mapping_id
        concurrency = mapping.get("ScalingConfig", {}).get("MaximumConcurrency")
        assert concurrency is None or 2 <= concurrency <= 1000, mapping_id
        assert "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []), mapping_id


def test_every_function_may_poll_its_queue_before_its_mapping_is_created(synth: Synth):
    """Lambda checks the execution role when the event source mapping is created and refuses it without
    sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on the queue
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html, "Execution role permissions").
    So the role's policy must grant them on that queue, and CloudFormation must create the policy before the
    mapping (the mapping depends on it, through the function, alias or DependsOn).
    """
    for mapping_id, _, queue_id, function_id in event_source_mappings(synth):
        role_id = the_resource(synth, props(synth.template_json["Resources"][function_id])["Role"], "AWS::IAM::Role")
        granting = set()
        for policy_id in role_policy_resources(synth, role_id):
            for statement in policy_statements(props(synth.template_json["Resources"][policy_id])["PolicyDocument"]):
                actions = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
                if all(allows(statement, a) for a in actions) and queue_id in references(statement["Resource"]):
                    granting.add(policy_id)
        assert granting, (mapping_id, "no policy of the role grants polling")
        assert granting & depends_on(synth, mapping_id), (mapping_id, "the mapping may be created before the policy")


def test_redrive_pairs_queue_types_and_keeps_messages_at_least_as_long(synth: Synth):
    """SQS dead-letter queues: the DLQ of a FIFO queue must be FIFO and that of a standard queue standard
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue.html);
    maxReceiveCount is 1 to 1,000 (RedrivePolicy); a standard queue's message keeps its original enqueue time in
    the DLQ, so a DLQ that keeps messages less long than its source deletes them early; AWS recommends a longer
    retention for the DLQ
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/setting-up-dead-letter-queue-retention.html).
    Retention is 60 s to 14 days (1,209,600 s), 4 days when unset.
    """
    redriven = 0
    for queue_id, queue in resources(synth, "AWS::SQS::Queue").items():
        retention = props(queue).get("MessageRetentionPeriod", 345_600)
        assert 60 <= retention <= 1_209_600, queue_id
        redrive = props(queue).get("RedrivePolicy")
        if redrive is None:
            continue
        redriven += 1
        dlq_id = the_resource(synth, redrive["deadLetterTargetArn"], "AWS::SQS::Queue")
        dlq_retention = props(synth.template_json["Resources"][dlq_id]).get("MessageRetentionPeriod", 345_600)
        assert 1 <= redrive["maxReceiveCount"] <= 1000, queue_id
        assert is_fifo(synth, dlq_id) == is_fifo(synth, queue_id), (queue_id, dlq_id)
        assert dlq_retention >= retention, (queue_id, retention, dlq_id, dlq_retention)
    assert redriven, "the template has queues with a redrive policy"


def test_queue_policies_fit_sqs_policy_quotas(synth: Synth):
    """SQS policy quotas (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-policies.html):
    8,192 bytes, 20 statements, 7 actions per statement, 50 principals, 10 conditions. CDK adds one statement per
    rule that dead-letters to a queue, so the shared notification DLQ is the one that grows.
    """
    for policy_id, policy in resources(synth, "AWS::SQS::QueuePolicy").items():
        document = props(policy)["PolicyDocument"]
        assert resolved_length(document) <= 8192, policy_id
        assert len(policy_statements(document)) <= 20, policy_id
        for statement in policy_statements(document):
            assert len(as_list(statement.get("Action", []))) <= 7, policy_id
            assert sum(len(v) for v in statement.get("Condition", {}).values()) <= 10, policy_id


# --- EventBridge ---------------------------------------------------------------------------------------------------


def test_rule_targets_stay_inside_eventbridges_limits(synth: Synth):
    """EventBridge (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html and the PutTargets API
    reference): at most 5 targets per rule; target ids of 1 to 64 characters `[.-_A-Za-z0-9]`; a retry policy of 0 to
    185 attempts and an event age of 60 to 86,400 s; a FIFO queue target needs a message group id. A rule's dead-letter
    queue must be a standard queue: PutTargets answers "SQS FIFO is not supported by Dead Letter Queues"
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html: "EventBridge DLQs are standard Amazon
    SQS queues"). Rule descriptions <= 512 characters, names (when set) <= 64 (AWS::Events::Rule).
    """
    for rule_id, rule in resources(synth, "AWS::Events::Rule").items():
        p = props(rule)
        assert 1 <= len(p.get("Targets", [])) <= 5, rule_id
        assert resolved_length(p.get("Description", "")) <= 512, rule_id
        if "Name" in p:
            assert re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", p["Name"]), rule_id
    for rule_id, _, target in rule_targets(synth):
        assert re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", target["Id"]), rule_id
        retry = target.get("RetryPolicy", {})
        assert 0 <= retry.get("MaximumRetryAttempts", 185) <= 185, rule_id
        assert 60 <= retry.get("MaximumEventAgeInSeconds", 86_400) <= 86_400, rule_id
        queues = resources(synth, "AWS::SQS::Queue")
        target_ids = references(target["Arn"]) & queues.keys()
        if any(is_fifo(synth, q) for q in target_ids):
            assert target.get("SqsParameters", {}).get("MessageGroupId"), rule_id
        if "DeadLetterConfig" in target:
            dlq_id = the_resource(synth, target["DeadLetterConfig"]["Arn"], "AWS::SQS::Queue")
            assert not is_fifo(synth, dlq_id), (rule_id, dlq_id)


def test_every_queue_eventbridge_sends_to_lets_that_rule_send(synth: Synth):
    """EventBridge delivers to an SQS queue (target or dead-letter queue) only if the queue's policy allows
    events.amazonaws.com sqs:SendMessage, scoped here with aws:SourceArn to the rule
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions,
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html). A queue encrypted with KMS also needs
    a key policy that lets EventBridge use the key (kms:GenerateDataKey and kms:Decrypt), which the AWS managed key
    alias/aws/sqs never grants; SSE-SQS needs no key policy
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-encryption-key-policy.html).
    """
    checked = 0
    for rule_id, _, target in rule_targets(synth):
        queues = references(target["Arn"]) & resources(synth, "AWS::SQS::Queue").keys()
        if "DeadLetterConfig" in target:
            queues |= references(target["DeadLetterConfig"]["Arn"])
        for queue_id in queues:
            checked += 1
            assert any(
                allows(s, "sqs:SendMessage")
                and s.get("Principal") == {"Service": "events.amazonaws.com"}
                and references(s.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn")) == {rule_id}
                for s in queue_policy_statements(synth, queue_id)
            ), (rule_id, queue_id)
            assert_queue_key_lets(synth, queue_id, "events.amazonaws.com")
    assert checked, "the template has rules that send to queues"


def assert_queue_key_lets(synth: Synth, queue_id: str, service: str) -> None:
    queue = props(synth.template_json["Resources"][queue_id])
    key = queue.get("KmsMasterKeyId")
    if key is None:
        assert queue.get("SqsManagedSseEnabled", True) is not False, queue_id
        return
    assert key != "alias/aws/sqs", (queue_id, "the AWS managed key cannot be shared with", service)
    key_id = the_resource(synth, key, "AWS::KMS::Key")
    key_statements = policy_statements(props(synth.template_json["Resources"][key_id])["KeyPolicy"])
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert any(allows(s, action) and s.get("Principal") == {"Service": service} for s in key_statements), (
            queue_id,
            action,
        )


def test_s3_rules_listen_on_the_default_bus_of_a_bucket_that_sends_to_eventbridge(synth: Synth):
    """Amazon S3 delivers its events to the default event bus of the bucket's account and region, and only for
    buckets with EventBridge notifications turned on
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventBridge.html,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-event-notifications-eventbridge.html). A rule for
    `aws.s3` on a custom bus, or for a bucket without the setting, is valid and never fires.
    """
    notified_buckets = set()
    for notification in resources(synth, "Custom::S3BucketNotifications").values():
        if "EventBridgeConfiguration" in props(notification)["NotificationConfiguration"]:
            notified_buckets |= references(props(notification)["BucketName"])
    for bucket_id, bucket in resources(synth, "AWS::S3::Bucket").items():
        if (
            props(bucket)
            .get("NotificationConfiguration", {})
            .get("EventBridgeConfiguration", {})
            .get("EventBridgeEnabled")
        ):
            notified_buckets.add(bucket_id)
    s3_rules = 0
    for rule_id, rule in resources(synth, "AWS::Events::Rule").items():
        pattern = props(rule).get("EventPattern", {})
        if "aws.s3" not in pattern.get("source", []):
            continue
        s3_rules += 1
        assert props(rule).get("EventBusName", "default") == "default", rule_id
        buckets = references(pattern.get("detail", {}).get("bucket", {}).get("name", []))
        assert buckets, rule_id
        assert buckets <= notified_buckets, (rule_id, buckets, notified_buckets)
    assert s3_rules, "the template has rules for S3 events"


def test_explicit_names_fit_their_resource_schemas(synth: Synth):
    """Names the stack sets itself (most derive from the stack name) must fit each resource's published schema:
    maxLength and pattern of the name properties in the CloudFormation resource schemas (the copies cfn-lint ships;
    e.g. AWS::Events::EventBus Name <= 256, AWS::SQS::Queue QueueName <= 80, AWS::KMS::Alias AliasName <= 256 and
    not `alias/aws/`, AWS::CloudWatch::Alarm AlarmName <= 255). Two limits are in the descriptions, not the schema
    keywords: an SNS topic's DisplayName <= 100 characters (AWS::SNS::Topic) and a dashboard name of 1 to 255
    characters `[A-Za-z0-9_-]` (PutDashboard); and two are in the service docs only: an SQS queue name of at most 80
    characters `[A-Za-z0-9_-]`, a FIFO queue's ending in `.fifo` (CreateQueue,
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html), and a managed
    policy name <= 128 (IAM quotas). The long-name template is where these are tight.
    """
    name_properties = {
        "AWS::Events::EventBus": "Name",
        "AWS::Events::Rule": "Name",
        "AWS::Events::Archive": "ArchiveName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::KMS::Alias": "AliasName",
        "AWS::CloudWatch::Alarm": "AlarmName",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::Lambda::Alias": "Name",
        "AWS::IAM::Role": "RoleName",
        "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
        "AWS::S3::Bucket": "BucketName",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::SNS::Topic": "TopicName",
        "AWS::DynamoDB::Table": "TableName",
    }
    checked = 0
    for resource_type, name_property in name_properties.items():
        schema = resource_schema(resource_type)["properties"][name_property]
        for logical_id, resource in resources(synth, resource_type).items():
            name = props(resource).get(name_property)
            if name is None:
                continue  # CloudFormation generates a name that fits
            checked += 1
            assert resolved_length(name) <= schema.get("maxLength", 10_000), (logical_id, name)
            if isinstance(name, str) and "pattern" in schema:
                assert re.search(schema["pattern"], name), (logical_id, name, schema["pattern"])
            if resource_type == "AWS::KMS::Alias":
                assert not name.startswith("alias/aws/"), logical_id
    for logical_id, queue in resources(synth, "AWS::SQS::Queue").items():
        name = props(queue).get("QueueName")
        if name is not None:
            fifo = bool(props(queue).get("FifoQueue"))
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,75}\.fifo" if fifo else r"[A-Za-z0-9_-]{1,80}", name), logical_id
    for logical_id, policy in resources(synth, "AWS::IAM::ManagedPolicy").items():
        assert resolved_length(props(policy).get("ManagedPolicyName", "")) <= 128, logical_id
    for logical_id, topic in resources(synth, "AWS::SNS::Topic").items():
        assert resolved_length(props(topic).get("DisplayName", "")) <= 100, logical_id
    for logical_id, dashboard in resources(synth, "AWS::CloudWatch::Dashboard").items():
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", props(dashboard)["DashboardName"]), logical_id
    assert checked, "the template sets names"


# --- Lambda --------------------------------------------------------------------------------------------------------

# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
RESERVED_ENVIRONMENT_KEYS = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
}


def test_functions_stay_inside_lambdas_quotas(synth: Synth):
    """Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): memory 128 to
    10,240 MB, timeout up to 900 s, /tmp 512 to 10,240 MB, at most 5 layers, environment variables 4 KB in all
    (keys and values, with every reference at its longest), descriptions <= 256 characters (CreateFunction).
    The runtime's own variables are reserved and cannot be set
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
    """
    for function_id, function in resources(synth, "AWS::Lambda::Function").items():
        p = props(function)
        assert 128 <= p.get("MemorySize", 128) <= 10_240, function_id
        assert 1 <= p.get("Timeout", 3) <= 900, function_id
        assert 512 <= p.get("EphemeralStorage", {}).get("Size", 512) <= 10_240, function_id
        assert len(p.get("Layers", [])) <= 5, function_id
        assert resolved_length(p.get("Description", "")) <= 256, function_id
        variables = p.get("Environment", {}).get("Variables", {})
        size = sum(len(key) + len(str(materialize(value))) for key, value in variables.items())
        assert size <= 4096, (function_id, size)
        assert not variables.keys() & RESERVED_ENVIRONMENT_KEYS, function_id


def test_an_environment_lambda_would_refuse_stops_the_synth_naming_the_keys(tmp_path: Path):
    """The same 4 KB rule for context values no template here has: 300 experiment-to-model mappings make the
    functions' environment too large, and the synth stops with a message naming the context keys instead of
    CloudFormation rolling back at CreateFunction."""
    from stacks.config import ConfigError

    mapping = json.dumps({str(i): f"model-{i}" for i in range(300)})
    with pytest.raises(ConfigError, match=r"over Lambda's 4096.*EXPERIMENT_MODEL_NAMES.*experimentModelNames"):
        synthesize({"experimentModelNames": mapping}, outdir=tmp_path / "cdk.out")


def snap_start_setting(value: Any) -> dict[str, Any]:
    """A function's SnapStart property; without a `region` it is `Fn::If` on the region condition
    (`stacks/regions.py`), whose true branch is what Lambda gets where SnapStart exists."""
    if isinstance(value, dict) and "Fn::If" in value:
        return value["Fn::If"][1]
    return value


SNAP_START_RUNTIME = re.compile(r"^(java(1[1-9]|[2-9]\d)|python3\.(1[2-9]|[2-9]\d)|dotnet([89]|\d\d))$")


def test_snap_start_functions_meet_snap_starts_conditions(synth: Synth):
    """Lambda SnapStart (https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html): Java 11+, Python 3.12+ and
    .NET 8+ managed runtimes; not with provisioned concurrency, Amazon EFS or more than 512 MB of /tmp; and it only
    applies to published versions, so whatever invokes the function must invoke a version or an alias, not the
    unqualified function ($LATEST runs without the snapshot).
    """
    snap_started = {
        function_id
        for function_id, function in resources(synth, "AWS::Lambda::Function").items()
        if snap_start_setting(props(function).get("SnapStart", {})).get("ApplyOn") == "PublishedVersions"
    }
    if synth.stack.stack_name == "RegistryAutopilot":
        assert snap_started, "cdk.json turns SnapStart on (where the region has it)"
    for function_id in snap_started:
        p = props(synth.template_json["Resources"][function_id])
        assert SNAP_START_RUNTIME.match(p["Runtime"]), (function_id, p["Runtime"])
        assert p.get("EphemeralStorage", {}).get("Size", 512) <= 512, function_id
        assert not p.get("FileSystemConfigs"), function_id
    for logical_id, resource in resources(synth, "AWS::Lambda::Alias", "AWS::Lambda::Version").items():
        if references(props(resource)["FunctionName"]) & snap_started:
            assert "ProvisionedConcurrencyConfig" not in props(resource), logical_id
    for mapping_id, mapping, _, function_id in event_source_mappings(synth):
        if function_id in snap_started:
            invoked = references(mapping["FunctionName"])
            kinds = {synth.template_json["Resources"][i]["Type"] for i in invoked}
            assert kinds & {"AWS::Lambda::Alias", "AWS::Lambda::Version"}, (mapping_id, "invokes $LATEST")


def test_functions_in_a_vpc_may_create_their_network_interfaces_before_they_are_created(synth: Synth):
    """Lambda creates a VPC function's network interfaces with the execution role and refuses CreateFunction when the
    role lacks ec2:CreateNetworkInterface, ec2:DescribeNetworkInterfaces and ec2:DeleteNetworkInterface
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html, "Required IAM permissions";
    AWSLambdaVPCAccessExecutionRole). The policy that grants them must exist before the function.
    """
    actions = ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface")
    in_vpc = 0
    for function_id, function in resources(synth, "AWS::Lambda::Function").items():
        if not props(function).get("VpcConfig", {}).get("SubnetIds"):
            continue
        in_vpc += 1
        role_id = the_resource(synth, props(function)["Role"], "AWS::IAM::Role")
        managed = " ".join(
            json.dumps(m) for m in props(synth.template_json["Resources"][role_id]).get("ManagedPolicyArns", [])
        )
        if "AWSLambdaVPCAccessExecutionRole" in managed:
            continue
        granting = {
            policy_id
            for policy_id in role_policy_resources(synth, role_id)
            for s in policy_statements(props(synth.template_json["Resources"][policy_id])["PolicyDocument"])
            if all(allows(s, a) for a in actions) and s.get("Resource") == "*"
        }
        assert granting & depends_on(synth, function_id), function_id
    if synth.stack.stack_name != "RegistryAutopilot":
        assert in_vpc, "the custom context puts the functions in a VPC"


# --- DynamoDB ------------------------------------------------------------------------------------------------------


def test_idempotency_tables_have_the_keys_and_ttl_attribute_powertools_writes(synth: Synth):
    """Powertools' DynamoDB persistence layer writes the key `id` (string, no sort key) and the expiry epoch in
    `expiration`; DynamoDB deletes expired records only through the table's TTL attribute
    (https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/#dynamodb-table,
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html). A table whose TTL attribute differs
    keeps every record forever; one with a different key makes every PutItem fail. The attribute names are read from
    the installed library so that a Powertools upgrade that changes them fails here.
    """
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    defaults = inspect.signature(DynamoDBPersistenceLayer.__init__).parameters
    key_attr, expiry_attr = defaults["key_attr"].default, defaults["expiry_attr"].default
    assert defaults["sort_key_attr"].default is None
    tables = {
        the_resource(synth, variables["IDEMPOTENCY_TABLE"], "AWS::DynamoDB::Table")
        for function in resources(synth, "AWS::Lambda::Function").values()
        if "IDEMPOTENCY_TABLE" in (variables := props(function).get("Environment", {}).get("Variables", {}))
    }
    assert tables
    for table_id in tables:
        table = props(synth.template_json["Resources"][table_id])
        assert table["KeySchema"] == [{"AttributeName": key_attr, "KeyType": "HASH"}], table_id
        assert {"AttributeName": key_attr, "AttributeType": "S"} in table["AttributeDefinitions"], table_id
        assert table["TimeToLiveSpecification"] == {"AttributeName": expiry_attr, "Enabled": True}, table_id


# --- KMS and IAM ---------------------------------------------------------------------------------------------------


def test_every_key_policy_leaves_the_account_in_control_of_the_key(synth: Synth):
    """KMS refuses CreateKey/PutKeyPolicy with a policy that would not let the caller change it again ("The new key
    policy will not allow you to update the key policy in the future", MalformedPolicyDocumentException;
    https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html, BypassPolicyLockoutSafetyCheck). The
    deployment role is some principal of the account, so each key policy gives the account root kms:* on the key,
    which delegates to IAM (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
    PendingWindowInDays is 7 to 30 (AWS::KMS::Key).
    """
    root = {
        "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    }
    keys = resources(synth, "AWS::KMS::Key")
    assert keys
    for key_id, key in keys.items():
        assert any(
            allows(s, "kms:PutKeyPolicy")
            and s.get("Principal") == root
            and s.get("Resource") == "*"
            and "Condition" not in s
            for s in policy_statements(props(key)["KeyPolicy"])
        ), key_id
        assert 7 <= props(key).get("PendingWindowInDays", 30) <= 30, key_id
        assert not props(key).get("BypassPolicyLockoutSafetyCheck"), key_id


def test_alarm_topics_and_their_keys_let_cloudwatch_publish_for_every_alarm(synth: Synth):
    """An alarm notifies an SNS topic only if the topic's policy lets cloudwatch.amazonaws.com sns:Publish and, for a
    topic encrypted with a customer managed key, the key policy lets it kms:Decrypt and kms:GenerateDataKey; otherwise
    the notification is dropped
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html, encrypted
    topics; https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). When those statements are scoped with
    aws:SourceArn to `alarm:<prefix>*`, every alarm that notifies the topic must have a name inside that prefix.
    """
    topics = resources(synth, "AWS::SNS::Topic")
    checked = 0
    for alarm_id, alarm in resources(synth, "AWS::CloudWatch::Alarm").items():
        name = props(alarm).get("AlarmName", f"{synth.stack.stack_name}-{alarm_id}-GENERATED")
        for action in props(alarm).get("AlarmActions", []) + props(alarm).get("OKActions", []):
            for topic_id in references(action) & topics.keys():
                checked += 1
                topic_statements = [
                    s
                    for policy in resources(synth, "AWS::SNS::TopicPolicy").values()
                    if topic_id in references(props(policy)["Topics"])
                    for s in policy_statements(props(policy)["PolicyDocument"])
                ]
                assert lets_cloudwatch(topic_statements, "sns:Publish", name), (alarm_id, topic_id)
                key = props(topics[topic_id]).get("KmsMasterKeyId")
                if key is None:
                    continue
                key_id = the_resource(synth, key, "AWS::KMS::Key")
                key_statements = policy_statements(props(synth.template_json["Resources"][key_id])["KeyPolicy"])
                for needed in ("kms:Decrypt", "kms:GenerateDataKey"):
                    assert lets_cloudwatch(key_statements, needed, name), (alarm_id, key_id, needed)
    assert checked, "the template has alarms that notify a topic"


def lets_cloudwatch(statements: list[dict[str, Any]], action: str, alarm_name: str) -> bool:
    """Some statement allows CloudWatch the action for an alarm of that name (any `alarm:` ArnLike scoping honoured)."""
    for statement in statements:
        if not allows(statement, action) or statement.get("Principal") != {"Service": "cloudwatch.amazonaws.com"}:
            continue
        scoped = statement.get("Condition", {}).get("ArnLike", {}).get("aws:SourceArn")
        if scoped is None:
            return True
        pattern = str(materialize(scoped)).rpartition(":alarm:")[2]
        if fnmatch.fnmatchcase(alarm_name, pattern):
            return True
    return False


def test_iam_policies_fit_iam_quotas(synth: Synth):
    """IAM quotas (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html), counted without
    whitespace and with every reference at its longest: all inline policies of a role together <= 10,240
    characters, a managed policy <= 6,144, a trust policy <= 2,048 (default), at most 10 managed policies per role
    (default); role names <= 64 and policy names <= 128 when set.
    """
    roles = resources(synth, "AWS::IAM::Role")
    assert roles
    inline_size = dict.fromkeys(roles, 0)
    for policy_id, policy in resources(synth, "AWS::IAM::Policy").items():
        assert len(props(policy)["PolicyName"]) <= 128, policy_id
        for role_id in references(props(policy).get("Roles", [])):
            inline_size[role_id] += resolved_length(props(policy)["PolicyDocument"])
    for role_id, role in roles.items():
        p = props(role)
        inline_size[role_id] += sum(resolved_length(x["PolicyDocument"]) for x in p.get("Policies", []))
        assert inline_size[role_id] <= 10_240, (role_id, inline_size[role_id])
        assert resolved_length(p["AssumeRolePolicyDocument"]) <= 2048, role_id
        assert len(p.get("ManagedPolicyArns", [])) <= 10, role_id
        assert len(p.get("RoleName", "")) <= 64, role_id
    for policy_id, policy in resources(synth, "AWS::IAM::ManagedPolicy").items():
        assert resolved_length(props(policy)["PolicyDocument"]) <= 6144, policy_id


# --- CloudWatch, SNS, logs -----------------------------------------------------------------------------------------


def test_alarms_stay_inside_cloudwatchs_limits(synth: Synth):
    """PutMetricAlarm (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html):
    alarm names unique in the account and region and <= 255 characters; at most 5 actions per state; a period of 10,
    20, 30 or a multiple of 60 s; Period x EvaluationPeriods <= 86,400 s for periods under an hour, else <= 604,800 s;
    DatapointsToAlarm <= EvaluationPeriods.
    """
    alarms = resources(synth, "AWS::CloudWatch::Alarm")
    names = [props(a)["AlarmName"] for a in alarms.values() if "AlarmName" in props(a)]
    assert alarms
    assert len(names) == len(set(names))
    for alarm_id, alarm in alarms.items():
        p = props(alarm)
        assert resolved_length(p.get("AlarmName", "")) <= 255, alarm_id
        for actions in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            assert len(p.get(actions, [])) <= 5, (alarm_id, actions)
        periods = (
            [p["Period"]]
            if "Period" in p
            else [m["MetricStat"]["Period"] for m in p.get("Metrics", []) if "MetricStat" in m]
        )
        assert periods, alarm_id
        for period in periods:
            assert period in (10, 20, 30) or period % 60 == 0, (alarm_id, period)
            total = period * p["EvaluationPeriods"]
            assert total <= (86_400 if period < 3600 else 604_800), (alarm_id, total)
        assert p.get("DatapointsToAlarm", p["EvaluationPeriods"]) <= p["EvaluationPeriods"], alarm_id


def test_dashboards_hold_at_most_500_widgets(synth: Synth):
    """A DashboardBody holds 0 to 500 widgets and must have a `widgets` array
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html)."""
    dashboards = resources(synth, "AWS::CloudWatch::Dashboard")
    assert dashboards
    for dashboard_id, dashboard in dashboards.items():
        body = json.loads(materialize(props(dashboard)["DashboardBody"]))
        assert isinstance(body["widgets"], list), dashboard_id
        assert len(body["widgets"]) <= 500, dashboard_id


def test_subscription_dead_letter_queues_accept_sns(synth: Synth):
    """An SNS subscription's dead-letter queue must be in the same account and region, of the topic's type (standard
    for a standard topic), and its policy must let sns.amazonaws.com send, scoped to the topic
    (https://docs.aws.amazon.com/sns/latest/dg/sns-dead-letter-queues.html,
    https://docs.aws.amazon.com/sns/latest/dg/sns-configure-dead-letter-queue.html). A KMS-encrypted queue needs a
    customer managed key whose policy lets SNS use it; that page does not mention SSE-SQS, which this check accepts
    (unverified without an AWS account).
    """
    for subscription_id, subscription in resources(synth, "AWS::SNS::Subscription").items():
        redrive = props(subscription).get("RedrivePolicy")
        if redrive is None:
            continue
        dlq_id = the_resource(synth, redrive["deadLetterTargetArn"], "AWS::SQS::Queue")
        topic_id = the_resource(synth, props(subscription)["TopicArn"], "AWS::SNS::Topic")
        topic_fifo = bool(props(synth.template_json["Resources"][topic_id]).get("FifoTopic"))
        assert is_fifo(synth, dlq_id) == topic_fifo, subscription_id
        assert any(
            allows(s, "sqs:SendMessage")
            and s.get("Principal") == {"Service": "sns.amazonaws.com"}
            and references(s.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn")) == {topic_id}
            for s in queue_policy_statements(synth, dlq_id)
        ), subscription_id
        assert_queue_key_lets(synth, dlq_id, "sns.amazonaws.com")


def test_log_groups_keep_logs_for_a_period_cloudwatch_logs_accepts(synth: Synth):
    """CloudWatch Logs accepts only a fixed set of retention periods (AWS::Logs::LogGroup RetentionInDays, the enum
    of its published schema; PutRetentionPolicy). Checked for every log group, including the ones CDK adds, and the
    set `stacks.config` validates `logRetentionDays` against must be that set.
    """
    from stacks.config import LOG_RETENTION_DAYS

    allowed = set(resource_schema("AWS::Logs::LogGroup")["properties"]["RetentionInDays"]["enum"])
    assert set(LOG_RETENTION_DAYS) == allowed
    log_groups = resources(synth, "AWS::Logs::LogGroup")
    assert log_groups
    for log_group_id, log_group in log_groups.items():
        assert props(log_group).get("RetentionInDays") in allowed, log_group_id


# --- each rule catches the template that breaks it -----------------------------------------------------------------


def one(template: dict[str, Any], resource_type: str, prefix: str) -> dict[str, Any]:
    """The properties of the one resource of that type whose logical id starts with the prefix."""
    (found,) = (
        v["Properties"] for k, v in template["Resources"].items() if v["Type"] == resource_type and k.startswith(prefix)
    )
    return found


def statement_with(document: dict[str, Any], action: str) -> dict[str, Any]:
    (found,) = (s for s in policy_statements(document) if action in as_list(s["Action"]))
    return found


def _too_many_resources(t):
    t["Resources"].update({f"Extra{i}": {"Type": "AWS::SQS::Queue", "Properties": {}} for i in range(420)})


def _short_visibility(t):
    one(t, "AWS::SQS::Queue", "RegisterPipelineQueue")["VisibilityTimeout"] = 300


def _fifo_batch_of_eleven(t):
    one(t, "AWS::Lambda::EventSourceMapping", "AliasesPipeline")["BatchSize"] = 11


def _no_partial_batch_responses(t):
    one(t, "AWS::Lambda::EventSourceMapping", "RegisterPipeline")["FunctionResponseTypes"] = []


def _role_cannot_poll(t):
    document = one(t, "AWS::IAM::Policy", "RegisterPipelineRoleDefaultPolicy")["PolicyDocument"]
    statement_with(document, "sqs:ReceiveMessage")["Action"].remove("sqs:ReceiveMessage")


def _function_created_before_its_policy(t):
    (function,) = (
        v for k, v in t["Resources"].items() if v["Type"] == "AWS::Lambda::Function" and k.startswith("Register")
    )
    function["DependsOn"] = [d for d in function["DependsOn"] if "Policy" not in d]


def _standard_queue_with_fifo_dlq(t):
    dlq = one(t, "AWS::SQS::Queue", "RegisterPipelineDeadLetterQueue")
    dlq.update({"FifoQueue": True, "QueueName": "register-dlq.fifo"})


def _dlq_expires_first(t):
    one(t, "AWS::SQS::Queue", "RegisterPipelineDeadLetterQueue")["MessageRetentionPeriod"] = 86_400


def _queue_policy_of_21_statements(t):
    document = one(t, "AWS::SQS::QueuePolicy", "RegisterPipelineQueuePolicy")["PolicyDocument"]
    document["Statement"] += [dict(document["Statement"][0], Sid=f"S{i}") for i in range(19)]


def _fifo_target_without_group(t):
    (target,) = one(t, "AWS::Events::Rule", "AliasesPipelineRule")["Targets"]
    del target["SqsParameters"]


def _fifo_rule_dlq(t):
    (target,) = one(t, "AWS::Events::Rule", "AliasesPipelineRule")["Targets"]
    target["DeadLetterConfig"]["Arn"] = {"Fn::GetAtt": ["AliasesPipelineDeadLetterQueue0B3B8FFB", "Arn"]}


def _queue_refuses_the_rule(t):
    document = one(t, "AWS::SQS::QueuePolicy", "RegisterPipelineQueuePolicy")["PolicyDocument"]
    document["Statement"] = [s for s in document["Statement"] if s["Effect"] == "Deny"]


def _s3_rule_on_the_project_bus(t):
    one(t, "AWS::Events::Rule", "RegisterPipelineRule")["EventBusName"] = {"Ref": "EventBusesProjectBusD6CAE1B6"}


def _display_name_of_101(t):
    one(t, "AWS::SNS::Topic", "MonitoringTopic")["DisplayName"] = "x" * 101


def _queue_name_of_81(t):
    one(t, "AWS::SQS::Queue", "AliasesPipelineQueue")["QueueName"] = "x" * 76 + ".fifo"


def _reserved_environment_key(t):
    one(t, "AWS::Lambda::Function", "RegisterPipelineFunction")["Environment"]["Variables"]["AWS_REGION"] = "x"


def _five_kilobytes_of_environment(t):
    variables = one(t, "AWS::Lambda::Function", "RegisterPipelineFunction")["Environment"]["Variables"]
    variables["EXPERIMENT_MODEL_NAMES"] = json.dumps({str(i): f"model-{i}" for i in range(300)})


def _snap_start_with_a_gigabyte_of_tmp(t):
    one(t, "AWS::Lambda::Function", "RegisterPipelineFunction")["EphemeralStorage"] = {"Size": 1024}


def _snap_start_function_invoked_unqualified(t):
    mapping = one(t, "AWS::Lambda::EventSourceMapping", "RegisterPipeline")
    mapping["FunctionName"] = {"Ref": "RegisterPipelineFunctionBC6E51E1"}


def _ttl_on_another_attribute(t):
    one(t, "AWS::DynamoDB::Table", "IdempotencyTable")["TimeToLiveSpecification"]["AttributeName"] = "ttl"


def _key_locks_out_the_account(t):
    policy = one(t, "AWS::KMS::Key", "ArtifactsKey")["KeyPolicy"]
    policy["Statement"] = [dict(policy["Statement"][0], Action="kms:Decrypt")]


def _topic_key_without_cloudwatch(t):
    policy = one(t, "AWS::KMS::Key", "MonitoringTopicKey")["KeyPolicy"]
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "CloudWatchAlarmsOfThisStack"]


def _alarm_outside_the_prefix(t):
    one(t, "AWS::CloudWatch::Alarm", "MonitoringRegisterThrottlesAlarm")["AlarmName"] = "register-throttles"


def _role_policy_over_10240(t):
    document = one(t, "AWS::IAM::Policy", "RegisterPipelineRoleDefaultPolicy")["PolicyDocument"]
    document["Statement"] *= 6


def _period_of_45(t):
    one(t, "AWS::CloudWatch::Alarm", "MonitoringRegisterThrottlesAlarm")["Period"] = 45


def _dashboard_of_501_widgets(t):
    body = {"widgets": [{"type": "text", "properties": {"markdown": "x"}}] * 501}
    one(t, "AWS::CloudWatch::Dashboard", "MonitoringDashboard")["DashboardBody"] = json.dumps(body)


def _retention_of_two_days(t):
    one(t, "AWS::Logs::LogGroup", "RegisterPipelineLogGroup")["RetentionInDays"] = 2


def _vpc_function_without_eni_permissions(t):
    document = one(t, "AWS::IAM::Policy", "ValidatePipelineRoleDefaultPolicy")["PolicyDocument"]
    document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "ManageVpcNetworkInterfaces"]


def _subscription_dlq_refuses_sns(t):
    document = one(t, "AWS::SQS::QueuePolicy", "MonitoringNotificationDeadLetterQueuePolicy")["PolicyDocument"]
    document["Statement"] = [s for s in document["Statement"] if s["Principal"] != {"Service": "sns.amazonaws.com"}]


BREAKAGES = [
    ("default_synth", test_template_fits_cloudformation_quotas, _too_many_resources),
    ("default_synth", test_every_queue_a_function_reads_outlasts_six_function_timeouts, _short_visibility),
    ("default_synth", test_event_source_mappings_stay_inside_lambdas_sqs_limits, _fifo_batch_of_eleven),
    ("default_synth", test_event_source_mappings_stay_inside_lambdas_sqs_limits, _no_partial_batch_responses),
    ("default_synth", test_every_function_may_poll_its_queue_before_its_mapping_is_created, _role_cannot_poll),
    (
        "default_synth",
        test_every_function_may_poll_its_queue_before_its_mapping_is_created,
        _function_created_before_its_policy,
    ),
    (
        "default_synth",
        test_redrive_pairs_queue_types_and_keeps_messages_at_least_as_long,
        _standard_queue_with_fifo_dlq,
    ),
    ("default_synth", test_redrive_pairs_queue_types_and_keeps_messages_at_least_as_long, _dlq_expires_first),
    ("default_synth", test_queue_policies_fit_sqs_policy_quotas, _queue_policy_of_21_statements),
    ("default_synth", test_rule_targets_stay_inside_eventbridges_limits, _fifo_target_without_group),
    ("default_synth", test_rule_targets_stay_inside_eventbridges_limits, _fifo_rule_dlq),
    ("default_synth", test_every_queue_eventbridge_sends_to_lets_that_rule_send, _queue_refuses_the_rule),
    (
        "default_synth",
        test_s3_rules_listen_on_the_default_bus_of_a_bucket_that_sends_to_eventbridge,
        _s3_rule_on_the_project_bus,
    ),
    ("default_synth", test_explicit_names_fit_their_resource_schemas, _display_name_of_101),
    ("default_synth", test_explicit_names_fit_their_resource_schemas, _queue_name_of_81),
    ("default_synth", test_functions_stay_inside_lambdas_quotas, _reserved_environment_key),
    ("default_synth", test_functions_stay_inside_lambdas_quotas, _five_kilobytes_of_environment),
    ("default_synth", test_snap_start_functions_meet_snap_starts_conditions, _snap_start_with_a_gigabyte_of_tmp),
    ("default_synth", test_snap_start_functions_meet_snap_starts_conditions, _snap_start_function_invoked_unqualified),
    (
        "default_synth",
        test_idempotency_tables_have_the_keys_and_ttl_attribute_powertools_writes,
        _ttl_on_another_attribute,
    ),
    ("default_synth", test_every_key_policy_leaves_the_account_in_control_of_the_key, _key_locks_out_the_account),
    (
        "default_synth",
        test_alarm_topics_and_their_keys_let_cloudwatch_publish_for_every_alarm,
        _topic_key_without_cloudwatch,
    ),
    (
        "default_synth",
        test_alarm_topics_and_their_keys_let_cloudwatch_publish_for_every_alarm,
        _alarm_outside_the_prefix,
    ),
    ("default_synth", test_iam_policies_fit_iam_quotas, _role_policy_over_10240),
    ("default_synth", test_alarms_stay_inside_cloudwatchs_limits, _period_of_45),
    ("default_synth", test_dashboards_hold_at_most_500_widgets, _dashboard_of_501_widgets),
    ("default_synth", test_log_groups_keep_logs_for_a_period_cloudwatch_logs_accepts, _retention_of_two_days),
    (
        "custom_synth",
        test_functions_in_a_vpc_may_create_their_network_interfaces_before_they_are_created,
        _vpc_function_without_eni_permissions,
    ),
    ("custom_synth", test_subscription_dead_letter_queues_accept_sns, _subscription_dlq_refuses_sns),
]


@pytest.mark.parametrize(
    ("synth_name", "rule", "breakage"), BREAKAGES, ids=[breakage.__name__.strip("_") for _, _, breakage in BREAKAGES]
)
def test_each_rule_refuses_a_template_that_breaks_it(synth_name, rule, breakage, request: pytest.FixtureRequest):
    # GIVEN a synthesized template with one rule broken in it
    original: Synth = request.getfixturevalue(synth_name)
    broken = copy.deepcopy(original.template_json)
    breakage(broken)

    # WHEN the rule's check reads it THEN the check fails
    with pytest.raises(AssertionError):
        rule(dataclasses.replace(original, template_json=broken))
