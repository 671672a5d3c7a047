"""Move a route's dead letters back to its queue, once their cause is fixed (`python -m ops redrive`).

Each letter is sent to the route's queue first and deleted from the dead-letter queue after, so a failure
between the two leaves a copy in both places, never in neither (the functions are idempotent). The `reason`
and `error` attributes a function added when it dead-lettered the message are dropped: they describe the
old failure. For a FIFO route the letter keeps its message group (the route's one lane, in order) and gets a
deduplication id of its own, so a redrive is not mistaken for the original within SQS's 5-minute window.

SQS's own StartMessageMoveTask is not implemented by moto (5.2.5), so this receive-send-delete loop is the
one code path for AWS and the sandbox alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DIAGNOSTIC_ATTRIBUTES = frozenset({"reason", "error"})


@dataclass
class RedriveResult:
    moved: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def redrive(sqs: Any, *, dead_letter_queue_url: str, queue_url: str, limit: int | None = None) -> RedriveResult:
    """Move up to `limit` (default: every) letter from `dead_letter_queue_url` to `queue_url`."""
    fifo = queue_url.endswith(".fifo")
    result = RedriveResult()
    while limit is None or result.moved < limit:
        wanted = 10 if limit is None else min(10, limit - result.moved)
        messages = sqs.receive_message(
            QueueUrl=dead_letter_queue_url,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=0,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["MessageGroupId"],
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            attributes = message.get("MessageAttributes", {})
            reason = attributes.get("reason", {}).get("StringValue") or "max_receive_count"
            kept = {name: value for name, value in attributes.items() if name not in DIAGNOSTIC_ATTRIBUTES}
            fifo_ids = {}
            if fifo:
                fifo_ids = {
                    "MessageGroupId": message.get("Attributes", {}).get("MessageGroupId") or "redriven",
                    "MessageDeduplicationId": f"redrive-{message['MessageId']}"[:128],
                }
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"], MessageAttributes=kept, **fifo_ids)
            sqs.delete_message(QueueUrl=dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
            result.moved += 1
            result.reasons[reason] = result.reasons.get(reason, 0) + 1
    return result
