"""One reading of a dead-letter queue's message, for the sandbox and `python -m ops redrive`."""

from __future__ import annotations

import json

from functions.models.dead_letters import DeadLetter
from ops.redrive import selected_by, summary


def _message(body: str, **attributes: str) -> dict:
    return {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": body,
        "MessageAttributes": {name: {"StringValue": value, "DataType": "String"} for name, value in attributes.items()},
        "Attributes": {"ApproximateReceiveCount": "3", "MessageGroupId": "registry"},
    }


def test_a_letter_the_function_dead_lettered_carries_its_reason_and_event() -> None:
    # GIVEN a message a handler dead-lettered, in a FIFO queue
    event = {"detail-type": "Object Created", "detail": {"object": {"key": "models/churn/1/MLmodel"}}}
    message = _message(json.dumps(event), reason="malformed_event", error="not an S3 object event")

    # WHEN it is read
    letter = DeadLetter.from_message(message, route="register")

    # THEN everything both readers need is there
    assert (letter.route, letter.message_id, letter.receipt_handle) == ("register", "m-1", "r-1")
    assert (letter.reason, letter.error, letter.receive_count) == ("malformed_event", "not an S3 object event", 3)
    assert letter.message_group_id == "registry"
    assert letter.event == event
    assert letter.key == "models/churn/1/MLmodel"
    assert summary(letter) == "Object Created: models/churn/1/MLmodel"
    assert selected_by(letter, "malformed_event")
    assert not selected_by(letter, "none")


def test_a_letter_sqs_moved_has_no_reason_and_may_hold_anything() -> None:
    # GIVEN a message SQS moved after maxReceiveCount, whose body is not an event
    letter = DeadLetter.from_message(_message("not json\x00"), route="validate")

    # WHEN it is read
    # THEN it has no reason (selected by `none`), no event, and a printable summary
    assert (letter.reason, letter.error, letter.event, letter.key) == (None, None, None, None)
    assert selected_by(letter, "none")
    assert summary(letter) == "not an event: 'not json\\x00'"
