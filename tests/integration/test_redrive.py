"""`ops.redrive` against moto's SQS: letters go back in order, in their group, without the old reason."""

from __future__ import annotations

import json
import uuid

from ops.__main__ import main as ops_main
from ops.redrive import redrive


def test_fifo_redrive_keeps_group_and_order_and_drops_the_reason(sandbox) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a FIFO dead-letter queue holding three letters of one group, each with a reason
    sqs = sandbox.client("sqs")
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    suffix = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"redrive-dlq-{suffix}.fifo", Attributes=fifo)["QueueUrl"]
    source = sqs.create_queue(QueueName=f"redrive-src-{suffix}.fifo", Attributes=fifo)["QueueUrl"]
    for body in ("first", "second", "third"):
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=body,
            MessageGroupId="alias-moves",
            MessageAttributes={"reason": {"DataType": "String", "StringValue": "not_passed"}},
        )
    # WHEN they are redriven
    result = redrive(sqs, dead_letter_queue_url=dlq, queue_url=source)
    # THEN they are in the source queue, in order, in their group, without the reason; the DLQ is empty
    assert (result.moved, result.reasons) == (3, {"not_passed": 3})
    received = []
    for _ in range(3):
        [message] = sqs.receive_message(
            QueueUrl=source, MessageSystemAttributeNames=["MessageGroupId"], MessageAttributeNames=["All"]
        )["Messages"]
        received.append((message["Body"], message["Attributes"]["MessageGroupId"], message.get("MessageAttributes")))
        sqs.delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])
    assert received == [(body, "alias-moves", None) for body in ("first", "second", "third")]
    assert sqs.receive_message(QueueUrl=dlq).get("Messages") is None


def test_redrive_command_refuses_an_unknown_route(sandbox, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN / WHEN a redrive of a route the sandbox does not have

    status = ops_main(["--sandbox", json.dumps(sandbox.info()), "redrive", "--route", "nosuch"])
    # THEN it stops with a message naming the known routes, and an error status
    assert status == 2
    assert "no route 'nosuch' in the target (routes: aliases, register, validate)" in capsys.readouterr().err


def test_redrive_command_on_an_empty_dlq_moves_nothing(sandbox, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the validate route's DLQ, empty after the other tests' letters are left alone

    before = len(sandbox.dlq_messages("validate"))
    # WHEN the operator redrives at most zero letters
    status = ops_main(["--sandbox", json.dumps(sandbox.info()), "redrive", "--route", "validate", "--limit", "0"])
    # THEN nothing moved and it says so
    assert status == 0
    assert "redrove 0 message(s) from the validate dead-letter queue" in capsys.readouterr().out
    assert len(sandbox.dlq_messages("validate")) == before
