"""`ops.redrive` against moto's SQS (the command line is tested in test_ops_redrive.py): letters go back in order, in their group, without the old reason."""

from __future__ import annotations

import uuid

from ops.redrive import RouteQueues, redrive


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
    reported: list[str] = []
    result = redrive(sqs, RouteQueues("aliases", source, dlq), report=reported.append)
    # THEN they are in the source queue, in order, in their group, without the reason; the DLQ is empty
    assert (result.moved, result.failed) == (3, 0)
    assert all("reason=not_passed" in line for line in reported)
    received = []
    for _ in range(3):
        [message] = sqs.receive_message(
            QueueUrl=source, MessageSystemAttributeNames=["MessageGroupId"], MessageAttributeNames=["All"]
        )["Messages"]
        received.append((message["Body"], message["Attributes"]["MessageGroupId"], message.get("MessageAttributes")))
        sqs.delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])
    assert received == [(body, "alias-moves", None) for body in ("first", "second", "third")]
    assert sqs.receive_message(QueueUrl=dlq).get("Messages") is None
