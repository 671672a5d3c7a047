"""What a worker may do with the message it is handling, besides succeeding or failing it."""

from __future__ import annotations

import boto3


class QueueControl:
    """Re-enqueue a message for later, dead-letter it with a reason, or shorten its visibility."""

    def __init__(self, client=None, *, queue_url: str, dead_letter_queue_url: str) -> None:  # type: ignore[no-untyped-def]
        self._sqs = client or boto3.client("sqs")
        self._queue_url = queue_url
        self._dead_letter_queue_url = dead_letter_queue_url

    def requeue(self, body: str, *, delay_seconds: int, attributes: dict[str, str]) -> None:
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=body,
            DelaySeconds=max(0, min(delay_seconds, 900)),
            MessageAttributes=_string_attributes(attributes),
        )

    def dead_letter(self, body: str, *, attributes: dict[str, str]) -> None:
        self._sqs.send_message(
            QueueUrl=self._dead_letter_queue_url,
            MessageBody=body,
            MessageAttributes=_string_attributes(attributes),
        )

    def retry_after(self, receipt_handle: str, seconds: int) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43200))
        )


def _string_attributes(attributes: dict[str, str]) -> dict[str, dict[str, str]]:
    # SQS allows 10 attributes per message, values up to 256 KB in total with the body.
    return {
        name: {"DataType": "String", "StringValue": value[:1000]}
        for name, value in list(attributes.items())[:10]
        if value
    }
