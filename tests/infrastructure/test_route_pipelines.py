"""Each route of `functions.routing.ROUTES` becomes rule -> queue (+ DLQ) -> function, exactly as the route says."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from functions.routing import REGISTER, ROUTES, Bus, Route
from functions.settings import function_environment
from stacks.constants import TARGET_MAX_EVENT_AGE, TARGET_RETRY_ATTEMPTS, pascal_case
from stacks.constructs.route_pipeline import fifo_queue_name
from tests.infrastructure.conftest import SECRET_ARN, Synth

ROUTE_NAMES = [route.name for route in ROUTES]
FIFO_ROUTE_NAMES = [route.name for route in ROUTES if route.fifo]
STANDARD_ROUTE_NAMES = [route.name for route in ROUTES if not route.fifo]
_BUCKET_MARKER = "__artifact-bucket-name__"


def _with_bucket_ref(value: Any, bucket_ref: dict) -> Any:
    """A route's pattern with the marker bucket name replaced by the CloudFormation reference to the bucket."""
    if value == _BUCKET_MARKER:
        return bucket_ref
    if isinstance(value, dict):
        return {k: _with_bucket_ref(v, bucket_ref) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_bucket_ref(v, bucket_ref) for v in value]
    return value


def _route(name: str) -> Route:
    return next(route for route in ROUTES if route.name == name)


def _resource(synth: Synth, construct: Any) -> dict[str, Any]:
    return synth.template_json["Resources"][synth.logical_id(construct)]


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
def test_rule_pattern_is_the_routes_pattern_with_the_bucket_reference(default_synth: Synth, route_name: str):
    # GIVEN a route and its pipeline
    route = _route(route_name)
    pipeline = default_synth.autopilot.pipelines[route_name]
    bucket_ref = {"Ref": default_synth.logical_id(default_synth.autopilot.artifacts.bucket)}

    # WHEN we read the pipeline's rule
    rule = _resource(default_synth, pipeline.rule)["Properties"]

    # THEN its pattern is exactly what functions.routing states, with the real bucket
    expected = _with_bucket_ref(route.event_pattern(bucket_name=_BUCKET_MARKER), bucket_ref)
    assert rule["EventPattern"] == expected


def test_register_rule_matches_mlmodel_uploads_of_this_bucket_on_the_default_bus(default_synth: Synth):
    # GIVEN the register pipeline
    pipeline = default_synth.autopilot.pipelines["register"]
    bucket_ref = {"Ref": default_synth.logical_id(default_synth.autopilot.artifacts.bucket)}

    # WHEN we read its rule
    rule = _resource(default_synth, pipeline.rule)["Properties"]

    # THEN it listens on the default bus (where S3 delivers) for this bucket's MLmodel objects
    assert REGISTER.bus is Bus.DEFAULT
    assert rule["EventBusName"] == "default"
    assert rule["EventPattern"] == {
        "source": ["aws.s3", "registry-autopilot.replay"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket_ref]}, "object": {"key": [{"suffix": "/MLmodel"}]}},
    }


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
def test_rule_lives_on_the_routes_bus(default_synth: Synth, route_name: str):
    # GIVEN a route
    route = _route(route_name)
    pipeline = default_synth.autopilot.pipelines[route_name]

    # WHEN we read its rule's bus
    bus_name = _resource(default_synth, pipeline.rule)["Properties"]["EventBusName"]

    # THEN it is the default bus or the project bus, as the route says
    expected = {
        Bus.DEFAULT: "default",
        Bus.PROJECT: {"Ref": default_synth.logical_id(default_synth.autopilot.buses.project_bus)},
    }[route.bus]
    assert bus_name == expected


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
def test_rule_targets_the_queue_with_retries_and_a_dead_letter_queue(default_synth: Synth, route_name: str):
    # GIVEN a route's pipeline
    pipeline = default_synth.autopilot.pipelines[route_name]

    # WHEN we read the rule's targets
    targets = _resource(default_synth, pipeline.rule)["Properties"]["Targets"]

    # THEN there is one: the queue, retried for a day and dead-lettered after that (to the route's DLQ, or to the
    # standard delivery DLQ of a FIFO route)
    assert len(targets) == 1
    target = targets[0]
    assert target["Arn"] == {"Fn::GetAtt": [default_synth.logical_id(pipeline.queue), "Arn"]}
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": TARGET_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": TARGET_MAX_EVENT_AGE.to_seconds(),
    }
    dead_letter_queue = pipeline.delivery_dead_letter_queue or pipeline.dead_letter_queue
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [default_synth.logical_id(dead_letter_queue), "Arn"]}}


@pytest.mark.parametrize("route_name", STANDARD_ROUTE_NAMES)
def test_standard_route_has_standard_queues_and_no_message_group(default_synth: Synth, route_name: str):
    # GIVEN a route without a FIFO group
    pipeline = default_synth.autopilot.pipelines[route_name]

    # WHEN we read its queues and its rule's target
    queues = [_resource(default_synth, q)["Properties"] for q in (pipeline.queue, pipeline.dead_letter_queue)]
    (target,) = _resource(default_synth, pipeline.rule)["Properties"]["Targets"]

    # THEN both queues are standard (CloudFormation names them), the target sets no group, and the target
    # dead-letters into the route's own DLQ (no separate delivery DLQ)
    assert [("FifoQueue" in q, "QueueName" in q) for q in queues] == [(False, False), (False, False)]
    assert "SqsParameters" not in target
    assert pipeline.delivery_dead_letter_queue is None


@pytest.mark.parametrize("route_name", FIFO_ROUTE_NAMES)
def test_fifo_route_queue_and_dead_letter_queue_are_fifo_with_content_based_deduplication(
    default_synth: Synth, route_name: str
):
    # GIVEN a FIFO route's pipeline
    route = _route(route_name)
    pipeline = default_synth.autopilot.pipelines[route_name]

    # WHEN we read its queue and dead-letter queue
    queue = _resource(default_synth, pipeline.queue)["Properties"]
    dlq = _resource(default_synth, pipeline.dead_letter_queue)["Properties"]

    # THEN both are FIFO, deduplicate on content (EventBridge sends no deduplication id), are named after the stack
    # and the route with SQS's `.fifo` suffix, and the queue redrives into the FIFO DLQ after max_receive_count
    for props in (queue, dlq):
        assert props["FifoQueue"] is True
        assert props["ContentBasedDeduplication"] is True
        assert props["QueueName"].endswith(".fifo")
        assert len(props["QueueName"]) <= 80
        assert props["SqsManagedSseEnabled"] is True
    assert queue["QueueName"] == f"RegistryAutopilot-{route.name}.fifo"
    assert dlq["QueueName"] == f"RegistryAutopilot-{route.name}-dlq.fifo"
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [default_synth.logical_id(pipeline.dead_letter_queue), "Arn"]},
        "maxReceiveCount": route.max_receive_count,
    }


@pytest.mark.parametrize("route_name", FIFO_ROUTE_NAMES)
def test_fifo_rule_sends_every_event_into_the_routes_group_and_dead_letters_to_a_standard_queue(
    default_synth: Synth, route_name: str
):
    # GIVEN a FIFO route's pipeline
    route = _route(route_name)
    pipeline = default_synth.autopilot.pipelines[route_name]
    assert pipeline.delivery_dead_letter_queue is not None
    delivery_id = default_synth.logical_id(pipeline.delivery_dead_letter_queue)

    # WHEN we read its rule's target, the delivery dead-letter queue and that queue's policy
    (target,) = _resource(default_synth, pipeline.rule)["Properties"]["Targets"]
    delivery = _resource(default_synth, pipeline.delivery_dead_letter_queue)["Properties"]
    (policy,) = (
        p["Properties"]["PolicyDocument"]
        for p in default_synth.resources("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": delivery_id}]
    )

    # THEN every event goes into the route's one message group; undeliverable events go to a STANDARD queue
    # (EventBridge refuses FIFO dead-letter queues), encrypted, kept 14 days, TLS-only, which only this rule may
    # send to
    assert target["SqsParameters"] == {"MessageGroupId": route.fifo_group}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [delivery_id, "Arn"]}}
    assert "FifoQueue" not in delivery
    assert delivery["SqsManagedSseEnabled"] is True
    assert delivery["MessageRetentionPeriod"] == 14 * 24 * 3600
    (allow,) = (s for s in policy["Statement"] if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [default_synth.logical_id(pipeline.rule), "Arn"]}}
    }


@pytest.mark.parametrize(
    ("stack_name", "expected"),
    [
        ("RegistryAutopilot", "RegistryAutopilot-aliases.fifo"),
        ("R" * 67, "R" * 67 + "-aliases.fifo"),  # exactly 80 characters
    ],
    ids=["default", "longest-whole"],
)
def test_fifo_queue_names_that_fit_are_kept_whole(stack_name: str, expected: str):
    # GIVEN a stack name short enough
    # WHEN the FIFO queue of route `aliases` is named
    name = fifo_queue_name(stack_name, "aliases")

    # THEN the name is <stack>-<route>.fifo
    assert name == expected
    assert len(name) <= 80


def test_long_fifo_queue_names_are_shortened_with_a_hash_to_sqs_limit():
    # GIVEN two long stack names that differ only after the 80th character
    first, second = "A" * 100 + "-one", "A" * 100 + "-two"

    # WHEN their FIFO dead-letter queues are named
    names = [fifo_queue_name(stack, "aliases", "dlq") for stack in (first, second)]

    # THEN each fits SQS's 80 characters, keeps the .fifo suffix, and they still differ
    assert all(len(name) == 80 and name.endswith(".fifo") for name in names)
    assert names[0] != names[1]


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
def test_queue_outlasts_six_function_timeouts_and_redrives_to_its_dlq(default_synth: Synth, route_name: str):
    # GIVEN a route's pipeline
    route = _route(route_name)
    pipeline = default_synth.autopilot.pipelines[route_name]

    # WHEN we read its queue, dead-letter queue and function
    queue = _resource(default_synth, pipeline.queue)["Properties"]
    dlq = _resource(default_synth, pipeline.dead_letter_queue)["Properties"]
    function = _resource(default_synth, pipeline.function)["Properties"]

    # THEN the visibility timeout covers six function timeouts, failures redrive after max_receive_count receives,
    # both queues are encrypted, and dead letters are kept 14 days
    assert queue["VisibilityTimeout"] == route.visibility_timeout_seconds
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [default_synth.logical_id(pipeline.dead_letter_queue), "Arn"]},
        "maxReceiveCount": route.max_receive_count,
    }
    assert queue["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
def test_queues_refuse_requests_without_tls(default_synth: Synth, route_name: str):
    # GIVEN a route's pipeline
    pipeline = default_synth.autopilot.pipelines[route_name]

    queues = [pipeline.queue, pipeline.dead_letter_queue, pipeline.delivery_dead_letter_queue]
    for queue in (q for q in queues if q is not None):
        queue_id = default_synth.logical_id(queue)
        # WHEN we find the queue's policy
        (policy,) = (
            p["Properties"]["PolicyDocument"]
            for p in default_synth.resources("AWS::SQS::QueuePolicy").values()
            if p["Properties"]["Queues"] == [{"Ref": queue_id}]
        )
        # THEN it denies every non-TLS request
        assert {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        } in policy["Statement"]


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
def test_function_runs_the_routes_handler_on_arm64_python_with_json_logs(default_synth: Synth, route_name: str):
    # GIVEN a route's pipeline
    route = _route(route_name)
    pipeline = default_synth.autopilot.pipelines[route_name]

    # WHEN we read its function and log group
    function = _resource(default_synth, pipeline.function)["Properties"]
    log_group = _resource(default_synth, pipeline.log_group)["Properties"]

    # THEN handler, timeout and memory come from the route; runtime is python >= 3.13 on arm64; logs are JSON in
    # an explicit log group kept for logRetentionDays; the dependency layer is attached
    assert function["Handler"] == route.handler
    assert function["Timeout"] == route.timeout_seconds
    assert function["MemorySize"] == route.memory_mb
    major, minor = (int(part) for part in function["Runtime"].removeprefix("python").split("."))
    assert (major, minor) >= (3, 13)
    assert function["Architectures"] == ["arm64"]
    assert function["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": {"Ref": default_synth.logical_id(pipeline.log_group)},
    }
    assert log_group["RetentionInDays"] == 30
    assert function["Layers"] == [{"Ref": default_synth.logical_id(default_synth.autopilot.code.layers[0])}]
    assert function.get("TracingConfig", {"Mode": "PassThrough"}) == {"Mode": "PassThrough"}  # tracing is opt-in


def test_function_tracing_and_log_retention_follow_context(custom_synth: Synth):
    # GIVEN a stack synthesized with tracing=true and logRetentionDays=90
    pipeline = custom_synth.autopilot.pipelines["register"]

    # WHEN we read the function and its log group
    function = _resource(custom_synth, pipeline.function)["Properties"]
    log_group = _resource(custom_synth, pipeline.log_group)["Properties"]

    # THEN tracing is active and logs are kept 90 days
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert log_group["RetentionInDays"] == 90


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
def test_event_source_reports_batch_item_failures_with_the_routes_batch(default_synth: Synth, route_name: str):
    # GIVEN a route's pipeline
    route = _route(route_name)
    pipeline = default_synth.autopilot.pipelines[route_name]

    # WHEN we read its event source mapping
    mapping = _resource(default_synth, pipeline.event_source_mapping)["Properties"]

    # THEN it drains the route's queue into the function, reporting partial failures, with the route's batch size
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [default_synth.logical_id(pipeline.queue), "Arn"]}
    assert _invokes_alias(mapping["FunctionName"], default_synth.logical_id(pipeline.alias))
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == route.batch_size
    assert 2 <= mapping["ScalingConfig"]["MaximumConcurrency"] <= 1000


SNAP_START_WHERE_AVAILABLE = {
    "Fn::If": ["SnapStartAvailable", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]
}


def _invokes_alias(function_name: Any, alias_logical_id: str) -> bool:
    """CDK names an alias target `<function name>:live`, the function name cut from the alias ARN."""
    return function_name == {
        "Fn::Join": ["", [{"Fn::Select": [6, {"Fn::Split": [":", {"Ref": alias_logical_id}]}]}, ":live"]]
    }


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
def test_snap_start_snapshots_each_published_version_and_the_queue_invokes_it_through_the_live_alias(
    default_synth: Synth, route_name: str
):
    # GIVEN a route's pipeline in the default stack (snapStart auto, no region)
    pipeline = default_synth.autopilot.pipelines[route_name]

    # WHEN we read its function, the version its alias publishes and the alias
    function = _resource(default_synth, pipeline.function)["Properties"]
    alias = _resource(default_synth, pipeline.alias)["Properties"]
    function_ref = {"Ref": default_synth.logical_id(pipeline.function)}
    versions = [
        v["Properties"]
        for v in default_synth.resources("AWS::Lambda::Version").values()
        if v["Properties"]["FunctionName"] == function_ref
    ]

    # THEN SnapStart applies to published versions wherever the deployment's region has it (see test_regions.py),
    # exactly one is published, and `live` points at it
    assert function["SnapStart"] == SNAP_START_WHERE_AVAILABLE
    assert len(versions) == 1
    assert alias["Name"] == "live"
    assert alias["FunctionName"] == function_ref
    assert "Fn::GetAtt" in alias["FunctionVersion"]


def test_a_register_function_with_more_disk_than_snap_start_allows_runs_on_demand(custom_synth: Synth):
    # GIVEN a Unity Catalog deployment: its register function gets 4,096 MB of /tmp to copy models
    register, validate = custom_synth.autopilot.pipelines["register"], custom_synth.autopilot.pipelines["validate"]

    # WHEN we read the functions and the register route's event source mapping
    function = _resource(custom_synth, register.function)["Properties"]
    mapping = _resource(custom_synth, register.event_source_mapping)["Properties"]

    # THEN register has no SnapStart (Lambda refuses it past 512 MB of /tmp) and its queue invokes $LATEST, while
    # the other routes keep it
    assert function["EphemeralStorage"] == {"Size": 4096}
    assert "SnapStart" not in function
    assert register.alias is None
    assert mapping["FunctionName"] == {"Ref": custom_synth.logical_id(register.function)}
    assert _resource(custom_synth, validate.function)["Properties"]["SnapStart"] == SNAP_START_WHERE_AVAILABLE


@pytest.mark.parametrize("route_name", FIFO_ROUTE_NAMES)
def test_fifo_event_source_drains_the_fifo_queue_without_a_batching_window(default_synth: Synth, route_name: str):
    # GIVEN a FIFO route's pipeline
    route = _route(route_name)
    pipeline = default_synth.autopilot.pipelines[route_name]

    # WHEN we read its event source mapping and queue
    mapping = _resource(default_synth, pipeline.event_source_mapping)["Properties"]
    queue = _resource(default_synth, pipeline.queue)["Properties"]

    # THEN it reads the FIFO queue with partial batch failures, at most 10 records (Lambda's FIFO maximum) and no
    # batching window (Lambda has none for FIFO); a concurrency cap is allowed (one group: one batch at a time)
    assert queue["FifoQueue"] is True
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [default_synth.logical_id(pipeline.queue), "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == route.batch_size <= 10
    assert "MaximumBatchingWindowInSeconds" not in mapping
    assert "ScalingConfig" in mapping


def test_register_concurrency_comes_from_context(default_synth: Synth, custom_synth: Synth):
    # GIVEN the default stack (registerMaxConcurrency = 5) and one with registerMaxConcurrency = "17"
    # WHEN we read the register event source mappings
    default = _resource(default_synth, default_synth.autopilot.pipelines["register"].event_source_mapping)
    custom = _resource(custom_synth, custom_synth.autopilot.pipelines["register"].event_source_mapping)

    # THEN each caps concurrency at its context value
    assert default["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}
    assert custom["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 17}


def test_function_environment_is_what_functions_settings_builds(custom_synth: Synth):
    # GIVEN the customised stack and its register pipeline
    stack = custom_synth.autopilot
    pipeline = stack.pipelines["register"]

    def ref(construct: Any) -> dict:
        return {"Ref": custom_synth.logical_id(construct)}

    # WHEN we read the function's environment
    environment = _resource(custom_synth, pipeline.function)["Properties"]["Environment"]["Variables"]

    # THEN it is function_environment(...) of the route as deployed (Unity Catalog: a 900 s timeout, so MLflow's
    # client timeout follows: 900 // (2 × 10 records) = 45 s), with CloudFormation references for deployed names
    assert pipeline.route == replace(REGISTER, timeout_seconds=900, memory_mb=pipeline.route.memory_mb)
    assert environment["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "45"
    expected = function_environment(
        pipeline.route,
        bucket="BUCKET",
        artifact_root_prefix="teams/mlflow",
        event_bus_name="BUS",
        idempotency_table="TABLE",
        queue_url="QUEUE",
        dead_letter_queue_url="DLQ",
        tracking_uri="databricks",
        registry_uri="databricks-uc",
        credentials_secret_arn=SECRET_ARN,
        model_name_tag="team.model",
        experiment_model_names={"12": "churn"},
        max_pending_seconds=2 * 3600,
        tracing=True,
    )
    references = {
        "BUCKET": ref(stack.artifacts.bucket),
        "BUS": ref(stack.buses.project_bus),
        "TABLE": ref(stack.idempotency.table),
        "QUEUE": ref(pipeline.queue),
        "DLQ": ref(pipeline.dead_letter_queue),
    }
    assert environment == {name: references.get(value, value) for name, value in expected.items()}
    assert json.loads(environment["EXPERIMENT_MODEL_NAMES"]) == {"12": "churn"}


def test_default_stack_uses_the_placeholder_tracking_uri_and_warns(default_synth: Synth):
    # GIVEN cdk.json as committed (mlflowTrackingUri empty)
    pipeline = default_synth.autopilot.pipelines["register"]

    # WHEN we read the function's tracking URI and the stack's annotations
    environment = _resource(default_synth, pipeline.function)["Properties"]["Environment"]["Variables"]
    warnings = [
        entry.data
        for entry in default_synth.autopilot.node.metadata
        if entry.type == "aws:cdk:warning" and "mlflowTrackingUri" in str(entry.data)
    ]

    # THEN the placeholder is used, no secret variable is set, and a synth warning says how to fix it
    assert environment["MLFLOW_TRACKING_URI"] == "https://mlflow.example.invalid"
    assert "MLFLOW_CREDENTIALS_SECRET_ARN" not in environment
    assert len(warnings) == 1


def test_table_keeps_short_lived_idempotency_records(default_synth: Synth):
    # GIVEN the default stack
    table = _resource(default_synth, default_synth.autopilot.idempotency.table)

    # WHEN we read the idempotency table
    props = table["Properties"]

    # THEN it is on-demand, keyed by `id`, expires items on `expiration`, has PITR and is encrypted
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionPolicy"] == "Delete"


def test_archives_keep_the_buckets_s3_events_and_every_project_event(default_synth: Synth):
    # GIVEN the default stack
    buses = default_synth.autopilot.buses
    bucket_ref = {"Ref": default_synth.logical_id(default_synth.autopilot.artifacts.bucket)}

    # WHEN we read both archives
    default_archive = _resource(default_synth, buses.default_bus_archive)["Properties"]
    project_archive = _resource(default_synth, buses.project_bus_archive)["Properties"]

    # THEN the default-bus archive keeps this bucket's S3 events, the project one every project event, 30 days each
    assert default_archive["EventPattern"] == {"source": ["aws.s3"], "detail": {"bucket": {"name": [bucket_ref]}}}
    assert default_archive["SourceArn"]["Fn::Join"][1][-1] == ":event-bus/default"
    assert project_archive["EventPattern"] == {"source": ["registry-autopilot"]}
    assert project_archive["SourceArn"] == {"Fn::GetAtt": [default_synth.logical_id(buses.project_bus), "Arn"]}
    assert default_archive["RetentionDays"] == project_archive["RetentionDays"] == 30


def test_project_bus_name_derives_from_the_stack_name(custom_synth: Synth):
    # GIVEN a stack named RegistryAutopilotCustom
    # WHEN we read the project bus
    bus = _resource(custom_synth, custom_synth.autopilot.buses.project_bus)["Properties"]

    # THEN its name is derived from the stack name
    assert bus["Name"] == "RegistryAutopilotCustom-events"


def test_outputs_have_stable_names(default_synth: Synth, custom_synth: Synth):
    # GIVEN both stacks
    route_outputs = {
        f"{pascal_case(n)}{suffix}" for n in ROUTE_NAMES for suffix in ("QueueUrl", "DeadLetterQueueUrl", "RuleArn")
    }
    delivery_outputs = {f"{pascal_case(n)}DeliveryDeadLetterQueueUrl" for n in FIFO_ROUTE_NAMES}
    replay_outputs = {"ArtifactEventsArchiveName", "ProjectEventsArchiveName"}
    expected = {
        "BucketName",
        "ArtifactRootUri",
        "WriterPolicyArn",
        "EventBusName",
        *route_outputs,
        *delivery_outputs,
        *replay_outputs,
    }

    expected |= {"AlarmTopicArn", "DashboardName"}  # stacks/constructs/monitoring.py
    # WHEN we list their outputs
    default_outputs = default_synth.template_json["Outputs"]
    custom_outputs = custom_synth.template_json["Outputs"]

    # THEN the names are fixed; the artifact root URI ends with the configured prefix; Databricks adds its profile,
    # webhooks their URL and secret, the recorder its log group
    assert expected == set(default_outputs)
    assert set(custom_outputs) == expected | {
        "DatabricksInstanceProfileArn",
        "WebhookUrl",
        "WebhookSecretArn",
        "RecorderLogGroupName",  # recorder=true
    }
    for name in FIFO_ROUTE_NAMES:
        delivery = default_synth.autopilot.pipelines[name].delivery_dead_letter_queue
        output = default_outputs[f"{pascal_case(name)}DeliveryDeadLetterQueueUrl"]
        assert output["Value"] == {"Ref": default_synth.logical_id(delivery)}
    bucket_id = custom_synth.logical_id(custom_synth.autopilot.artifacts.bucket)
    assert custom_outputs["ArtifactRootUri"]["Value"] == {
        "Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/teams/mlflow"]]
    }
