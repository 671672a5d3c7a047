"""The Lambda SQS event the worker builds, and how it reads `batchItemFailures` (Lambda's rules)."""

from __future__ import annotations

import base64

import pytest

from sandbox.event_source import (
    LambdaContext,
    WholeBatchFailed,
    failed_message_ids,
    fifo_sequence_number,
    lambda_sqs_event,
    queue_arn,
)

QUEUE_URL = "http://127.0.0.1:5000/123456789012/registry-autopilot-register"
FIFO_QUEUE_URL = "http://127.0.0.1:5000/123456789012/registry-autopilot-aliases.fifo"


def _message(message_id: str = "m-1", **extra: object) -> dict:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"receipt-{message_id}",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Body": '{"detail-type": "Object Created"}',
        "Attributes": {
            "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
            "SentTimestamp": "1700000000000",
            "ApproximateReceiveCount": "2",
            "ApproximateFirstReceiveTimestamp": "1700000000100",
        },
        **extra,
    }


def test_records_have_lambdas_shape() -> None:
    # GIVEN a ReceiveMessage response's message
    message = _message()

    # WHEN it becomes a Lambda SQS event
    event = lambda_sqs_event([message], event_source_arn=queue_arn(QUEUE_URL, region="us-east-1"), region="us-east-1")

    # THEN the record is what Lambda's event source mapping delivers
    assert event == {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "receipt-m-1",
                "body": '{"detail-type": "Object Created"}',
                "attributes": {
                    "ApproximateFirstReceiveTimestamp": "1700000000100",
                    "ApproximateReceiveCount": "2",
                    "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
                    "SentTimestamp": "1700000000000",
                },
                "messageAttributes": {},
                "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:registry-autopilot-register",
                "awsRegion": "us-east-1",
            }
        ]
    }


def test_message_attributes_are_camel_cased_and_binary_values_base64() -> None:
    # GIVEN a message with a string and a binary attribute
    message = _message(
        MessageAttributes={
            "reason": {"StringValue": "malformed_event", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
        MD5OfMessageAttributes="abc",
    )

    # WHEN it becomes a Lambda SQS event
    record = lambda_sqs_event([message], event_source_arn="arn", region="us-east-1")["Records"][0]

    # THEN the attributes read as Lambda spells them
    assert record["messageAttributes"] == {
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
        "reason": {
            "stringValue": "malformed_event",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
    }
    assert record["md5OfMessageAttributes"] == "abc"


def _fifo_message(message_id: str, sent: str, **attributes: str) -> dict:
    message = _message(message_id)
    message["Attributes"] |= {"SentTimestamp": sent, "MessageGroupId": "alias-moves", **attributes}
    message["Attributes"]["MessageDeduplicationId"] = f"sha-of-{message_id}"
    return message


def test_records_from_a_fifo_queue_carry_the_fifo_attributes_lambda_passes() -> None:
    # GIVEN two messages of a FIFO queue as moto returns them (content-deduplicated: no SequenceNumber)
    first, second = _fifo_message("m-1", "1700000000000"), _fifo_message("m-2", "1700000000001")

    # WHEN they become a Lambda SQS event
    event = lambda_sqs_event(
        [first, second], event_source_arn=queue_arn(FIFO_QUEUE_URL, region="us-east-1"), region="us-east-1"
    )

    # THEN each record has its group, deduplication id and a 20-digit sequence number that grows with send order
    records = event["Records"]
    assert records[0]["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:registry-autopilot-aliases.fifo"
    assert [r["attributes"]["MessageGroupId"] for r in records] == ["alias-moves", "alias-moves"]
    assert [r["attributes"]["MessageDeduplicationId"] for r in records] == ["sha-of-m-1", "sha-of-m-2"]
    numbers = [r["attributes"]["SequenceNumber"] for r in records]
    assert all(len(n) == 20 and n.isdigit() for n in numbers)
    assert int(numbers[0]) < int(numbers[1])
    assert numbers[0] == fifo_sequence_number(first)


def test_a_sequence_number_sqs_gave_is_kept_and_standard_queues_get_none() -> None:
    # GIVEN a FIFO message with its own SequenceNumber, and a standard queue's message
    fifo = _fifo_message("m-1", "1700000000000", SequenceNumber="18849496460467696128")

    # WHEN they become Lambda SQS events
    fifo_record = lambda_sqs_event([fifo], event_source_arn="arn:aws:sqs:r:1:q.fifo", region="r")["Records"][0]
    standard_record = lambda_sqs_event([_message()], event_source_arn="arn:aws:sqs:r:1:q", region="r")["Records"][0]

    # THEN SQS's number is passed as is, and a standard record has no FIFO attributes
    assert fifo_record["attributes"]["SequenceNumber"] == "18849496460467696128"
    assert not {"SequenceNumber", "MessageGroupId", "MessageDeduplicationId"} & set(standard_record["attributes"])


@pytest.mark.parametrize(
    "answer",
    [None, {}, {"batchItemFailures": None}, {"batchItemFailures": []}],
    ids=["null", "empty", "null-list", "empty-list"],
)
def test_answers_lambda_treats_as_complete_success(answer: object) -> None:
    # GIVEN an answer Lambda reads as "all records succeeded"
    # WHEN the failed ids are read
    failed = failed_message_ids(answer, ["m-1", "m-2"])

    # THEN none failed
    assert failed == set()


def test_listed_records_are_the_failed_ones() -> None:
    # GIVEN an answer listing one record of the batch
    answer = {"batchItemFailures": [{"itemIdentifier": "m-2"}]}

    # WHEN the failed ids are read
    failed = failed_message_ids(answer, ["m-1", "m-2", "m-3"])

    # THEN only that record failed
    assert failed == {"m-2"}


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, "without an itemIdentifier"),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, "without an itemIdentifier"),
        ({"batchItemFailures": [{"itemId": "m-1"}]}, "without an itemIdentifier"),
        ({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, "not in the batch"),
        ({"batchItemFailures": "m-1"}, "not a list"),
        ("ok", "returned str"),
    ],
)
def test_answers_lambda_treats_as_complete_failure(answer: object, problem: str) -> None:
    # GIVEN an answer Lambda cannot use
    # WHEN the failed ids are read
    # THEN the whole batch fails
    with pytest.raises(WholeBatchFailed, match=problem):
        failed_message_ids(answer, ["m-1"])


def test_context_looks_like_lambdas() -> None:
    # GIVEN a context for a 60 s function
    context = LambdaContext(function_name="registry-autopilot-register", memory_limit_in_mb=1024, timeout_seconds=60)

    # WHEN a handler reads it
    remaining = context.get_remaining_time_in_millis()

    # THEN it has Lambda's attributes and a shrinking time budget
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:registry-autopilot-register"
    assert context.function_version == "$LATEST"
    assert context.log_group_name == "/aws/lambda/registry-autopilot-register"
    assert len(context.aws_request_id) == 36
    assert 59_000 < remaining <= 60_000
