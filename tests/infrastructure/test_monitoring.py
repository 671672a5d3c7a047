"""The operator's view: dashboard widgets per route, alarms per function/queue/DLQ/rule to the topic, the topic's
encryption, policy and subscription, and the notification rules' patterns and messages."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from constructs import Construct

from functions.domain.proof import ProofOutcome, ProofPlan, outcome_checks
from functions.metrics import BUSINESS_METRICS, Unit, service_name
from functions.models.events import DETAIL_MODELS, ModelAliasMoved, ModelVersionValidated, PromotionPending
from functions.routing import Bus
from functions.settings import METRICS_NAMESPACE
from stacks.alarms import RUNBOOK
from stacks.autopilot import RegistryAutopilot
from stacks.config import ConfigError, RegistryConfig
from stacks.constructs.alerting import dead_letter_queues
from stacks.constructs.notifications import NOTIFICATIONS
from tests.builders import ValidationWorld
from tests.fakes import FakeModelProofs
from tests.infrastructure.conftest import CUSTOM_CONTEXT, Synth, cdk_json_context

ROUTE_ALARMS = ("errors", "throttles", "queue-age", "dead-letter-queue", "delivery-failed", "events-lost")


def render(value: Any) -> str:
    """A CloudFormation string with its references as readable markers: `{Ref:Id}`, `{Id.Attr}`."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"{{Ref:{value['Ref']}}}"
    if "Fn::GetAtt" in value:
        return "{" + ".".join(value["Fn::GetAtt"]) + "}"
    if "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(render(part) for part in parts)
    raise ValueError(f"cannot render {value!r}")


def resource(synth: Synth, construct: Any) -> dict[str, Any]:
    return synth.template_json["Resources"][synth.logical_id(construct)]


def alarm(synth: Synth, key: str) -> dict[str, Any]:
    return resource(synth, synth.autopilot.monitoring.alarms[key])["Properties"]


def dashboard(synth: Synth) -> dict[str, Any]:
    body = resource(synth, synth.autopilot.monitoring.dashboard)["Properties"]["DashboardBody"]
    return json.loads(render(body))


def widgets_by_title(synth: Synth) -> dict[str, dict[str, Any]]:
    return {w["properties"]["title"]: w for w in dashboard(synth)["widgets"] if "title" in w["properties"]}


# --- alarms -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_every_route_has_its_alarms_and_every_alarm_notifies_the_topic(synth_name: str, request):
    # GIVEN a synthesized stack and its pipelines
    synth: Synth = request.getfixturevalue(synth_name)
    monitoring = synth.autopilot.monitoring
    topic = {"Ref": synth.logical_id(monitoring.topic)}

    # WHEN we look at the alarms
    alarms = synth.resources("AWS::CloudWatch::Alarm")

    # THEN each route has its six, every alarm in the template is one the construct made, named after the stack, and
    # each notifies the topic when it fires and when it clears
    expected = {f"{route}/{kind}" for route in synth.autopilot.pipelines for kind in ROUTE_ALARMS}
    assert expected <= set(monitoring.alarms)
    assert len(alarms) == len(monitoring.alarms)
    for properties in (a["Properties"] for a in alarms.values()):
        assert properties["AlarmName"].startswith(f"{synth.stack.stack_name}-")
        assert properties["AlarmActions"] == [topic]
        assert properties["OKActions"] == [topic]
        assert properties["TreatMissingData"] == "notBreaching"
        assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_function_alarms_watch_the_routes_function(default_synth: Synth):
    for name, pipeline in default_synth.autopilot.pipelines.items():
        # GIVEN a route's function
        function = {"Ref": default_synth.logical_id(pipeline.function)}
        # WHEN we read its errors and throttles alarms
        errors, throttles = alarm(default_synth, f"{name}/errors"), alarm(default_synth, f"{name}/throttles")
        # THEN they watch that function's Lambda metrics: any error pages at once, throttles after 15 minutes
        for properties, metric in ((errors, "Errors"), (throttles, "Throttles")):
            assert (properties["Namespace"], properties["MetricName"]) == ("AWS/Lambda", metric)
            assert properties["Dimensions"] == [{"Name": "FunctionName", "Value": function}]
            assert (properties["Statistic"], properties["Threshold"]) == ("Sum", 1)
        assert errors["EvaluationPeriods"] == 1
        assert throttles["EvaluationPeriods"] == throttles["DatapointsToAlarm"] == 3


def test_queue_alarms_watch_the_oldest_message_and_every_dead_letter_queue(default_synth: Synth):
    for name, pipeline in default_synth.autopilot.pipelines.items():
        # GIVEN a route's queue and dead-letter queue
        queue = {"Fn::GetAtt": [default_synth.logical_id(pipeline.queue), "QueueName"]}
        dead_letters = {"Fn::GetAtt": [default_synth.logical_id(pipeline.dead_letter_queue), "QueueName"]}
        # WHEN we read the queue alarms
        age, depth = alarm(default_synth, f"{name}/queue-age"), alarm(default_synth, f"{name}/dead-letter-queue")
        # THEN a message older than 30 minutes, or any dead letter, raises them
        assert (age["MetricName"], age["Statistic"], age["Threshold"]) == (
            "ApproximateAgeOfOldestMessage",
            "Maximum",
            1800,
        )
        assert age["Dimensions"] == [{"Name": "QueueName", "Value": queue}]
        assert (depth["MetricName"], depth["Threshold"]) == ("ApproximateNumberOfMessagesVisible", 1)
        assert depth["Dimensions"] == [{"Name": "QueueName", "Value": dead_letters}]


def test_rule_alarms_use_the_dimensions_of_the_rules_bus(default_synth: Synth):
    for name, pipeline in default_synth.autopilot.pipelines.items():
        # GIVEN a route's rule
        rule = {"Ref": default_synth.logical_id(pipeline.rule)}
        bus = {"Ref": default_synth.logical_id(default_synth.autopilot.buses.project_bus)}
        # WHEN we read its delivery alarms
        failed, lost = alarm(default_synth, f"{name}/delivery-failed"), alarm(default_synth, f"{name}/events-lost")
        # THEN they watch AWS/Events for that rule; custom-bus rules are also identified by their bus
        expected = [{"Name": "RuleName", "Value": rule}]
        if pipeline.route.bus is Bus.PROJECT:
            expected = [{"Name": "EventBusName", "Value": bus}, *expected]
        for properties, metric in ((failed, "FailedInvocations"), (lost, "InvocationsFailedToBeSentToDlq")):
            assert (properties["Namespace"], properties["MetricName"]) == ("AWS/Events", metric)
            assert sorted(properties["Dimensions"], key=lambda d: d["Name"]) == expected


def test_alarm_descriptions_say_what_to_run_and_fit_cloudwatchs_limit(custom_synth: Synth):
    # GIVEN the customised stack's alarms
    stack = custom_synth.stack.stack_name
    for key in custom_synth.autopilot.monitoring.alarms:
        # WHEN we read an alarm's description, with references at a realistic length (an ARN is ~100 characters)
        raw = alarm(custom_synth, key)["AlarmDescription"]
        text = re.sub(r"\{[^{}]+\}", "x" * 100, render(raw))
        # THEN it points at the runbook and fits the 1,024 characters CloudWatch allows
        assert text.endswith(f"Runbook: {RUNBOOK}."), key
        assert len(text) <= 1024, (key, len(text))
    # AND the dead-letter alarm names the commands, with this stack's name and the queues' ARNs
    dead_letters = render(alarm(custom_synth, "register/dead-letter-queue")["AlarmDescription"])
    pipeline = custom_synth.autopilot.pipelines["register"]
    assert f"python -m ops --stack {stack} redrive register --dry-run" in dead_letters
    assert (
        f"aws sqs start-message-move-task --source-arn {{{custom_synth.logical_id(pipeline.dead_letter_queue)}.Arn}} "
        f"--destination-arn {{{custom_synth.logical_id(pipeline.queue)}.Arn}}"
    ) in dead_letters
    assert f"python -m replay archive --stack {stack}" in render(
        alarm(custom_synth, "register/events-lost")["AlarmDescription"]
    )


def test_every_queue_but_the_work_queue_counts_as_a_dead_letter_queue():
    # GIVEN a pipeline-like construct with a work queue and two dead-letter queues (as a FIFO route has)
    stack = Stack()
    pipeline = Construct(stack, "Pipeline")
    pipeline.queue = sqs.Queue(pipeline, "Queue")  # type: ignore[attr-defined]
    sqs.Queue(pipeline, "DeadLetterQueue")
    sqs.Queue(pipeline, "DeliveryDeadLetterQueue")

    # WHEN we ask for its dead-letter queues
    found = dead_letter_queues(pipeline)  # type: ignore[arg-type]

    # THEN both are found, and the work queue is not
    assert sorted(q.node.id for q in found) == ["DeadLetterQueue", "DeliveryDeadLetterQueue"]


# --- topic ------------------------------------------------------------------------------------------------------------


def test_topic_is_encrypted_with_a_rotated_key_and_refuses_plain_http(default_synth: Synth):
    # GIVEN the monitoring topic and its key
    monitoring = default_synth.autopilot.monitoring
    key_id = default_synth.logical_id(monitoring.key)
    topic_id = default_synth.logical_id(monitoring.topic)

    # WHEN we read them and the topic's policy
    topic = resource(default_synth, monitoring.topic)["Properties"]
    key = resource(default_synth, monitoring.key)["Properties"]
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in default_synth.resources("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]

    # THEN the topic uses the stack's own rotated key, and its policy denies requests without TLS
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["EnableKeyRotation"] is True
    assert {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": {"Ref": topic_id},
        "Sid": "AllowPublishThroughSSLOnly",
    } in policy
    # AND only this stack's alarms (CloudWatch, by account and alarm-name prefix) may publish through the policy:
    # the notification rules publish with their role, so EventBridge's service principal gets nothing here
    allows = [s for s in policy if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allows] == [{"Service": "cloudwatch.amazonaws.com"}]
    condition = allows[0]["Condition"]
    assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert render(condition["ArnLike"]["aws:SourceArn"]).endswith(":alarm:RegistryAutopilot-*")


def test_key_lets_cloudwatch_and_eventbridge_encrypt_only_for_this_stacks_alarms_and_rules(default_synth: Synth):
    # GIVEN the topic's key policy
    statements = resource(default_synth, default_synth.autopilot.monitoring.key)["Properties"]["KeyPolicy"]["Statement"]
    bus_id = default_synth.logical_id(default_synth.autopilot.buses.project_bus)

    # WHEN we look at what services may do with it
    services = {s["Principal"]["Service"]: s for s in statements if "Service" in s["Principal"]}

    # THEN CloudWatch, with exact actions, for alarms of this account named after this stack; and EventBridge, for
    # rules on this stack's project bus in this account (the SNS guide asks for it on encrypted topics, even though
    # the notification rules also publish through a role that holds the same grant)
    assert set(services) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    cloudwatch, eventbridge = services["cloudwatch.amazonaws.com"], services["events.amazonaws.com"]
    for statement in (cloudwatch, eventbridge):
        assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert statement["Effect"] == "Allow"
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert render(cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(":alarm:RegistryAutopilot-*")
    assert render(eventbridge["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        f"arn:{{Ref:AWS::Partition}}:events:{{Ref:AWS::Region}}:{{Ref:AWS::AccountId}}:rule/{{Ref:{bus_id}}}/*"
    )
    # AND every notification rule is on that bus, so each one matches that ARN pattern
    for rule in default_synth.autopilot.monitoring.notification_rules.values():
        assert resource(default_synth, rule)["Properties"]["EventBusName"] == {"Ref": bus_id}


def test_notification_rules_publish_with_a_role_limited_to_the_topic_and_its_key(default_synth: Synth):
    # GIVEN the notification rules and their role
    monitoring = default_synth.autopilot.monitoring
    role_id = default_synth.logical_id(monitoring.notification_role)
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in default_synth.resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]

    # WHEN we read the rules' targets
    targets = [
        resource(default_synth, rule)["Properties"]["Targets"] for rule in monitoring.notification_rules.values()
    ]

    # THEN every target publishes with that role, which may publish to the topic and use its key, nothing else
    assert all(t["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]} for [t] in targets)
    assert policy == [
        {"Action": "sns:Publish", "Effect": "Allow", "Resource": {"Ref": default_synth.logical_id(monitoring.topic)}},
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [default_synth.logical_id(monitoring.key), "Arn"]},
        },
    ]


def test_email_subscription_comes_from_context_with_a_dead_letter_queue(default_synth: Synth, custom_synth: Synth):
    # GIVEN the default stack (no alarmEmail) and the customised one (alarmEmail set)
    # WHEN we look for subscriptions
    default_subscriptions = default_synth.resources("AWS::SNS::Subscription")
    [subscription] = custom_synth.resources("AWS::SNS::Subscription").values()

    # THEN only the customised stack subscribes its address, with undeliverable alerts kept in a dead-letter queue
    monitoring = custom_synth.autopilot.monitoring
    assert default_subscriptions == {}
    assert subscription["Properties"] == {
        "Endpoint": CUSTOM_CONTEXT["alarmEmail"],
        "Protocol": "email",
        "RedrivePolicy": {
            "deadLetterTargetArn": {
                "Fn::GetAtt": [custom_synth.logical_id(monitoring.notification_dead_letter_queue), "Arn"]
            }
        },
        "TopicArn": {"Ref": custom_synth.logical_id(monitoring.topic)},
    }


@pytest.mark.parametrize(
    "address", ["oncall", "on call@example.com", "a@b", "ops@example.com,dev@example.com", "<ops@example.com>", 7]
)
def test_alarm_email_must_be_one_address(address):
    # GIVEN a bad alarmEmail
    # WHEN it is read
    # THEN the error names the key
    with pytest.raises(ConfigError, match="alarmEmail"):
        RegistryConfig.from_mapping({"alarmEmail": address})


def test_alarm_email_is_trimmed_and_may_be_empty():
    assert (
        RegistryConfig.from_mapping({"alarmEmail": " oncall+ml@example.co.uk "}).alarm_email
        == "oncall+ml@example.co.uk"
    )
    assert RegistryConfig.from_mapping({"alarmEmail": ""}).alarm_email == ""


# --- notifications ----------------------------------------------------------------------------------------------------


def rendered_message(target: dict[str, Any], event: dict[str, Any]) -> str:
    """What EventBridge sends for a text input template: each <placeholder> replaced by the value at its path, escaped
    for the JSON string it sits in (arrays as their JSON text), then the string itself."""
    transformer = target["InputTransformer"]
    template = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        text = value if isinstance(value, str) else json.dumps(value)
        template = template.replace(f"<{name}>", json.dumps(text)[1:-1])
    return json.loads(render(template))


def failed_verdict_notification(synth: Synth, verdict: ModelVersionValidated) -> tuple[dict[str, Any], str]:
    """The failed-verdicts rule's properties, and the message it renders for this verdict's event."""
    rule = resource(synth, synth.autopilot.monitoring.notification_rules["FailedVerdicts"])["Properties"]
    event = {
        "source": "registry-autopilot",
        "detail-type": "Model Version Validated",
        "detail": verdict.model_dump(mode="json"),
    }
    [target] = rule["Targets"]
    return rule, rendered_message(target, event)


def test_failed_verdicts_are_sent_as_a_sentence_naming_model_version_and_reasons(default_synth: Synth):
    # GIVEN a failed verdict
    verdict = ModelVersionValidated(
        model_name="churn",
        version="7",
        source_uri="s3://bucket/models/churn/7",
        correlation_id="5e1c0a3e-1d2f-5b6a-9c7d-0e1f2a3b4c5d",
        status="failed",
        reasons=["metric accuracy 0.61 is below the minimum 0.85", 'no "requirements.txt" beside MLmodel'],
        policy="churn.yaml@sha256:0123456789ab",
    )

    # WHEN we read the failed-verdicts rule's pattern and render its message for that verdict's event
    rule, message = failed_verdict_notification(default_synth, verdict)
    [target] = rule["Targets"]

    # THEN it matches failed verdicts on the project bus only, and the message names what an operator needs
    assert rule["EventBusName"] == {"Ref": default_synth.logical_id(default_synth.autopilot.buses.project_bus)}
    assert rule["EventPattern"] == {
        "source": ["registry-autopilot"],
        "detail-type": ["Model Version Validated"],
        "detail": {"status": ["failed"]},
    }
    assert message.startswith("registry-autopilot: model churn version 7 FAILED validation against policy churn.yaml")
    assert (
        'Reasons: ["metric accuracy 0.61 is below the minimum 0.85", "no \\"requirements.txt\\" beside MLmodel"].'
        in message
    )
    assert "Correlation id: 5e1c0a3e-1d2f-5b6a-9c7d-0e1f2a3b4c5d" in message
    assert "python -m ops --stack RegistryAutopilot verdict churn 7" in message
    assert target["DeadLetterConfig"] == {
        "Arn": {
            "Fn::GetAtt": [
                default_synth.logical_id(default_synth.autopilot.monitoring.notification_dead_letter_queue),
                "Arn",
            ]
        }
    }


def test_a_failed_proofs_notification_says_what_failed_to_load_or_predict(default_synth: Synth, tmp_path):
    # GIVEN the event the validate route emits for a version whose metric passed and whose model did not load (the
    # loader's traceback in its proof:load check)
    error = (
        'Traceback (most recent call last):\n  File "proof_runner.py", line 61, in _probe\n'
        "    return pickle.load(f)\n_pickle.UnpicklingError: invalid load key, 'n'."
    )
    checks = outcome_checks(ProofPlan("input_example.json", True), ProofOutcome("load", passed=False, error=error))
    world = ValidationWorld(tmp_path, "metrics: {accuracy: {min: 0.8}}\nproof: smoke\n", proofs=FakeModelProofs(checks))
    world.validator.validate(world.version("7", accuracy=0.9))

    # WHEN the failed-verdicts rule renders its message
    _, message = failed_verdict_notification(default_synth, world.events.published[-1])

    # THEN the reasons are the failed proof check's reason and the first line of its message (with the exception), not
    # the traceback, which the event's checks keep
    assert "model churn version 7 FAILED validation" in message
    assert (
        "Reasons: [\"load_failed: load failed: _pickle.UnpicklingError: invalid load key, 'n'.\"]. Correlation id:"
        in message
    )
    assert "Traceback" not in message
    assert "_probe" not in message


def test_alias_moves_are_sent_as_a_sentence_naming_model_version_alias_and_reason(default_synth: Synth):
    # GIVEN the alias-moves rule and a move
    rule = resource(default_synth, default_synth.autopilot.monitoring.notification_rules["AliasMoves"])["Properties"]
    move = ModelAliasMoved(
        model_name="churn",
        version="7",
        source_uri="s3://bucket/models/churn/7",
        correlation_id="c-7",
        alias="champion",
        previous_version="5",
        reason="accuracy 0.93 beats champion v5 (0.91)",
        actor="autopilot",
    )
    event = {"source": "registry-autopilot", "detail-type": "Model Alias Moved", "detail": move.model_dump(mode="json")}

    # WHEN we render its message
    [target] = rule["Targets"]
    message = rendered_message(target, event)

    # THEN every alias move matches, and the message names alias, model, versions, reason and the undo command
    assert rule["EventPattern"] == {"source": ["registry-autopilot"], "detail-type": ["Model Alias Moved"]}
    assert message == (
        "registry-autopilot: alias champion of model churn now points at version 7 (it pointed at 5), moved by "
        "autopilot. Why: accuracy 0.93 beats champion v5 (0.91). Correlation id: c-7. "
        "To undo: python -m ops --stack RegistryAutopilot rollback churn --alias champion."
    )


def test_promotions_awaiting_approval_are_sent_with_the_command_that_approves(default_synth: Synth):
    # GIVEN the pending-promotions rule and a pending promotion
    rule = resource(default_synth, default_synth.autopilot.monitoring.notification_rules["PendingPromotions"])[
        "Properties"
    ]
    pending = PromotionPending(
        model_name="churn",
        version="8",
        source_uri="s3://bucket/models/churn/8",
        correlation_id="c-8",
        alias="champion",
        reason="approval: passed validation; awaiting approval",
    )
    event = {
        "source": "registry-autopilot",
        "detail-type": "Promotion Pending",
        "detail": pending.model_dump(mode="json"),
    }

    # WHEN we render its message
    [target] = rule["Targets"]
    message = rendered_message(target, event)

    # THEN it names model, version and alias, and gives the approve command
    assert rule["EventPattern"] == {"source": ["registry-autopilot"], "detail-type": ["Promotion Pending"]}
    assert "model churn version 8 passed validation and awaits approval for alias champion" in message
    assert "python -m ops --stack RegistryAutopilot promote churn 8 --alias champion (the approver" in message
    assert "<" not in message  # a literal <...> would be an undefined placeholder: EventBridge refuses the rule


@pytest.mark.parametrize("notification", NOTIFICATIONS, ids=lambda n: n.construct_id)
def test_message_fields_are_fields_of_the_event_contract(notification):
    # GIVEN a notification and the contract model of the events it matches
    [detail_type] = notification.pattern["detail-type"]
    model = DETAIL_MODELS[detail_type]
    # WHEN we read the paths its message uses
    fields = {path.removeprefix("$.detail.") for path in notification.fields.values()}
    # THEN each is a field of that model (a renamed field would leave a blank in every message)
    assert fields <= set(model.model_fields)


# --- dashboard --------------------------------------------------------------------------------------------------------


def test_dashboard_has_the_operational_widgets_of_every_route(default_synth: Synth):
    # GIVEN the dashboard
    widgets = widgets_by_title(default_synth)
    for name, pipeline in default_synth.autopilot.pipelines.items():
        function = f"{{Ref:{default_synth.logical_id(pipeline.function)}}}"
        queue = f"{{{default_synth.logical_id(pipeline.queue)}.QueueName}}"
        dead_letters = f"{{{default_synth.logical_id(pipeline.dead_letter_queue)}.QueueName}}"
        # WHEN we read the route's row
        invocations = widgets[f"{name}: function invocations, errors, throttles"]["properties"]["metrics"]
        duration = widgets[f"{name}: function duration (ms)"]["properties"]
        queue_widget = widgets[f"{name}: queue depth and oldest message (s)"]["properties"]["metrics"]
        dead_letter_widget = widgets[f"{name}: dead letters and failed deliveries"]["properties"]["metrics"]
        # THEN it graphs the function's errors, throttles and duration, the queue's depth and age, and the DLQ
        assert [m[:4] for m in invocations] == [
            ["AWS/Lambda", metric, "FunctionName", function] for metric in ("Invocations", "Errors", "Throttles")
        ]
        assert [m[-1]["stat"] for m in duration["metrics"]] == ["p50", "p99", "Maximum"]
        assert duration["annotations"]["horizontal"][0]["value"] == pipeline.route.timeout_seconds * 1000
        assert ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue] in [m[:4] for m in queue_widget]
        assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dead_letters] in [
            m[:4] for m in dead_letter_widget
        ]


def test_dashboard_draws_each_routes_business_metrics_from_the_catalogue(default_synth: Synth):
    # GIVEN the dashboard and the metric catalogue
    widgets = widgets_by_title(default_synth)
    for name in default_synth.autopilot.pipelines:
        service = service_name(name)
        outcomes = json.dumps(widgets[f"{name}: outcomes"]["properties"]["metrics"])
        by_reason = json.dumps(widgets[f"{name}: rejected, deferred, retried (by reason)"]["properties"]["metrics"])
        latency = widgets[f"{name}: seconds from upload"]["properties"]["metrics"]
        for metric in BUSINESS_METRICS[name]:
            # WHEN we look for a catalogued metric in the route's row
            # THEN a plain count is the metric of the route's service; a split one is a search on its dimension
            if metric.unit is Unit.SECONDS:
                lines = [m for m in latency if m[:4] == [METRICS_NAMESPACE, metric.name, "service", service]]
                assert [line[4]["stat"] for line in lines] == ["p50", "p90", "Maximum"]
            elif metric.dimension is None:
                assert json.dumps([METRICS_NAMESPACE, metric.name, "service", service])[1:-1] in outcomes
            else:
                search = (
                    f"SEARCH('{{{METRICS_NAMESPACE},{metric.dimension},service}} "
                    f'MetricName=\\"{metric.name}\\" service=\\"{service}\\"\', \'Sum\', 300)'
                )
                assert search in outcomes, (name, metric.name)
        for batch_metric in ("Rejected", "Deferred", "Retried"):
            assert f'MetricName=\\"{batch_metric}\\" service=\\"{service}\\"' in by_reason


def test_dashboard_shows_the_alarms_first(default_synth: Synth):
    # GIVEN the dashboard
    body = dashboard(default_synth)
    # WHEN we read its alarm widget
    [status] = [w for w in body["widgets"] if w["type"] == "alarm"]
    # THEN it lists every alarm, above the route rows
    alarms = default_synth.autopilot.monitoring.alarms.values()
    assert status["properties"]["alarms"] == [f"{{{default_synth.logical_id(a)}.Arn}}" for a in alarms]
    assert status["y"] < min(w["y"] for w in body["widgets"] if w["type"] == "metric")


def test_a_second_dead_letter_queue_in_a_pipeline_gets_its_own_alarm(tmp_path):
    # GIVEN a stack whose validate pipeline also has a delivery dead-letter queue (as a FIFO route has), added before
    # the monitoring construct is built (it is built last)
    class WithDeliveryQueue(RegistryAutopilot):
        def _add_tags(self, scope: Construct) -> None:
            if scope is self:
                sqs.Queue(self.pipelines["validate"], "DeliveryDeadLetterQueue", enforce_ssl=True)
            super()._add_tags(scope)

    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": []}, outdir=str(tmp_path))
    stack = Stack(app, "Fifoish")
    WithDeliveryQueue(stack, "Default", config=RegistryConfig(stack_name="Fifoish"))

    # WHEN it is synthesized
    template = Template.from_stack(stack).to_json()

    # THEN that queue has its own alarm, which says to replay from the archive rather than redrive
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in template["Resources"].values()
        if a["Type"] == "AWS::CloudWatch::Alarm"
    }
    delivery = alarms["Fifoish-validate-delivery-dead-letter-queue"]
    description = render(delivery["AlarmDescription"])
    assert "python -m replay archive --stack Fifoish --archive project --rule validate" in description
    assert "redrive" not in description
    assert "Fifoish-validate-dead-letter-queue" in alarms
