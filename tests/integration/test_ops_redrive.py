"""`python -m ops redrive`: dead letters back onto their queue, against the sandbox's moto server and real worker.

The sandbox is shared, so these tests never empty its own dead-letter queues: each uses dead-letter queues of its
own, handed to the command through a copy of the sandbox's description (or a stack's outputs on moto's CloudFormation).
"""

from __future__ import annotations

import json
import uuid

import pytest

from functions.models.events import ValidationRequested
from functions.routing import ROUTES
from ops.__main__ import main as ops_main
from ops.redrive import output_prefix
from stacks.constants import pascal_case

VALIDATED = "Model Version Validated"


def fresh_queue(sandbox, *, fifo: bool = False) -> str:  # type: ignore[no-untyped-def]
    name = f"redrive-test-{uuid.uuid4().hex[:12]}" + (".fifo" if fifo else "")
    attributes = {"FifoQueue": "true"} if fifo else {}
    return sandbox.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def description_with(sandbox, route: str, **urls: str) -> str:  # type: ignore[no-untyped-def]
    """The sandbox's --json description, with some of `route`'s queue URLs replaced."""
    info = sandbox.info()
    info["queues"][route] = {**info["queues"][route], **urls}
    return json.dumps(info)


def dead_letter(sandbox, queue_url: str, body: str, *, reason: str | None = None, **extra) -> None:  # type: ignore[no-untyped-def]
    attributes = {"reason": {"DataType": "String", "StringValue": reason}} if reason else {}
    sandbox.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes, **extra)


def drain(sandbox, queue_url: str) -> list[dict]:  # type: ignore[no-untyped-def]
    messages = sandbox.client("sqs").receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )
    return messages.get("Messages", [])


def depth(sandbox, queue_url: str) -> int:  # type: ignore[no-untyped-def]
    attributes = sandbox.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def validation_requested(model_name: str, version: str, correlation_id: str) -> str:
    detail = ValidationRequested(
        model_name=model_name, version=version, requested_by="outage-test", correlation_id=correlation_id
    )
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Validation Requested",
            "source": "registry-autopilot",
            "account": "123456789012",
            "time": "2026-11-20T10:15:42Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail.model_dump(mode="json"),
        }
    )


def test_a_dead_lettered_request_is_redriven_and_handled(sandbox, upload_model, model_name, capsys):
    # GIVEN a registered, validated version, and a re-validation request that was dead-lettered during an outage
    upload_model(model_name)
    sandbox.wait_for_events(VALIDATED, model_name=model_name, count=1, timeout=60)
    dead_letters = fresh_queue(sandbox)
    correlation_id = f"redrive-{uuid.uuid4()}"
    dead_letter(sandbox, dead_letters, validation_requested(model_name, "1", correlation_id))

    # WHEN the operator redrives the validate route's dead letters into its queue
    code = ops_main(
        ["--sandbox", description_with(sandbox, "validate", dead_letter_queue_url=dead_letters), "redrive", "validate"]
    )

    # THEN the message left the dead-letter queue, and the validate worker handled it: a second verdict, with the
    # request's correlation id
    assert code == 0
    output = capsys.readouterr().out
    assert f"reason=none  Validation Requested: {model_name} v1" in output
    assert "moved 1, left 0, could not move 0" in output
    verdicts = sandbox.wait_for_events(VALIDATED, model_name=model_name, count=2, timeout=60)
    assert correlation_id in {event["detail"]["correlation_id"] for event in verdicts}
    assert depth(sandbox, dead_letters) == 0


def test_dry_run_lists_reasons_and_reason_filter_moves_only_those(sandbox, capsys):
    # GIVEN a dead-letter queue with a rejected message (its reason attached) and one whose retries ran out (none)
    dead_letters, queue = fresh_queue(sandbox), fresh_queue(sandbox)
    dead_letter(sandbox, dead_letters, "{not an event", reason="malformed_event")
    exhausted = validation_requested("churn", "3", "c-exhausted")
    dead_letter(sandbox, dead_letters, exhausted)
    description = description_with(sandbox, "validate", queue_url=queue, dead_letter_queue_url=dead_letters)

    # WHEN the operator lists them
    assert ops_main(["--sandbox", description, "redrive", "validate", "--dry-run"]) == 0
    listing = capsys.readouterr().out

    # THEN both are listed with their reasons, and both are still there
    assert "reason=malformed_event  not an event: '{not an event'" in listing
    assert "reason=none  Validation Requested: churn v3" in listing
    assert "would move 2, left 0" in listing
    assert depth(sandbox, dead_letters) == 2
    assert depth(sandbox, queue) == 0

    # WHEN the operator moves only those whose retries ran out
    assert ops_main(["--sandbox", description, "redrive", "validate", "--reason", "none"]) == 0

    # THEN that one is on the queue, as it was, without the dead-letter attributes; the rejected one stays, visible
    assert "moved 1, left 1, could not move 0" in capsys.readouterr().out
    [moved] = drain(sandbox, queue)
    assert moved["Body"] == exhausted
    assert "MessageAttributes" not in moved
    [left] = drain(sandbox, dead_letters)
    assert left["MessageAttributes"]["reason"]["StringValue"] == "malformed_event"


def test_fifo_dead_letters_keep_their_message_group(sandbox, capsys):
    # GIVEN FIFO queues (as a FIFO route has) and a dead letter of the route's one message group
    dead_letters, queue = fresh_queue(sandbox, fifo=True), fresh_queue(sandbox, fifo=True)
    body = validation_requested("churn", "4", "c-fifo")
    dead_letter(sandbox, dead_letters, body, MessageGroupId="alias-moves", MessageDeduplicationId="d-1")

    # WHEN it is redriven
    description = description_with(sandbox, "validate", queue_url=queue, dead_letter_queue_url=dead_letters)
    assert ops_main(["--sandbox", description, "redrive", "validate"]) == 0

    # THEN it is on the FIFO queue in the same group
    assert "moved 1" in capsys.readouterr().out
    [moved] = drain(sandbox, queue)
    assert moved["Body"] == body
    assert moved["Attributes"]["MessageGroupId"] == "alias-moves"


def test_a_stacks_queues_come_from_its_outputs(sandbox, capsys):
    # GIVEN a deployed stack (on moto's CloudFormation) whose outputs name its bus and the register queues
    name = f"RedriveTest{uuid.uuid4().hex[:8]}"
    prefix = output_prefix("register")
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}, "DeadLetters": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "EventBusName": {"Value": f"{name}-events"},
            f"{prefix}QueueUrl": {"Value": {"Ref": "Queue"}},
            f"{prefix}DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetters"}},
        },
    }
    cloudformation = sandbox.client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    outputs = {
        o["OutputKey"]: o["OutputValue"] for o in cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    }
    body = validation_requested("churn", "5", "c-stack")
    dead_letter(sandbox, outputs[f"{prefix}DeadLetterQueueUrl"], body)

    # WHEN the operator redrives by stack name
    code = ops_main(["--stack", name, "redrive", "register"])

    # THEN the stack's queues were used
    assert code == 0
    assert "moved 1, left 0" in capsys.readouterr().out
    assert [m["Body"] for m in drain(sandbox, outputs[f"{prefix}QueueUrl"])] == [body]


@pytest.mark.parametrize("route", [route.name for route in ROUTES])
def test_output_names_match_the_stacks(route):
    # GIVEN a route; WHEN the command and the stack name its outputs; THEN they agree
    assert output_prefix(route) == pascal_case(route)


def test_an_unknown_route_is_refused_with_the_known_ones(sandbox, capsys):
    # GIVEN a route name the pipeline does not have
    # WHEN the operator asks to redrive it
    code = ops_main(["--sandbox", json.dumps(sandbox.info()), "redrive", "promote"])
    # THEN nothing is touched and the error lists the routes there are
    assert code == 2
    known = ", ".join(route.name for route in ROUTES)
    assert f"no route named 'promote'; known: {known}" in capsys.readouterr().err
