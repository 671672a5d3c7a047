"""What a worker may do with the message it is handling, besides succeeding or failing it.

A send that fails (after botocore's retries, `functions.adapters.aws`) is `Unavailable("queue_<throttled|unavailable|
refused>")`: the record is then retried by its queue rather than counted as dead-lettered or re-enqueued.
"""

from __future__ import annotations

import hashlib

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from functions.adapters import aws
from functions.project import FIFO_SUFFIX

DEPENDENCY = "queue"
DEFAULT_DEAD_LETTER_GROUP = "dead-letters"
"""The message group of a dead letter sent to a FIFO queue when the original message's group is not known."""


def is_fifo_queue(queue_url_or_arn: str) -> bool:
    """SQS requires every FIFO queue's name, so its URL and ARN, to end with `.fifo`."""
    return queue_url_or_arn.rstrip("/").endswith(FIFO_SUFFIX)


class QueueControl:
    """Re-enqueue a message for later, dead-letter it with a reason, or shorten its visibility."""

    def __init__(self, client: BaseClient | None = None, *, queue_url: str, dead_letter_queue_url: str) -> None:
        self._sqs = client or aws.client("sqs")
        self._queue_url = queue_url
        self._dead_letter_queue_url = dead_letter_queue_url

    def requeue(self, body: str, *, delay_seconds: int, attributes: dict[str, str]) -> None:
        if is_fifo_queue(self._queue_url):
            # A FIFO queue refuses per-message DelaySeconds, and a copy would go behind the messages that followed.
            raise ValueError("a FIFO queue cannot re-enqueue a message with a delay: retry it in place instead")
        self._send(
            "SQS SendMessage (re-enqueue)",
            QueueUrl=self._queue_url,
            MessageBody=body,
            DelaySeconds=max(0, min(delay_seconds, 900)),
            MessageAttributes=_string_attributes(attributes),
        )

    def dead_letter(
        self,
        body: str,
        *,
        attributes: dict[str, str],
        group_id: str | None = None,
        deduplication_id: str | None = None,
    ) -> None:
        """Send `body` to the dead-letter queue with `attributes` (the reason).

        A FIFO dead-letter queue needs a message group and a deduplication id: the original message's group (so a
        redrive puts the letters back into the route's one group, in order) and its message id (so a retried
        dead-lettering within SQS's 5-minute window is not stored twice). Both are ignored for a standard queue.
        """
        fifo = {}
        if is_fifo_queue(self._dead_letter_queue_url):
            fifo = {
                "MessageGroupId": group_id or DEFAULT_DEAD_LETTER_GROUP,
                "MessageDeduplicationId": deduplication_id or hashlib.sha256(body.encode()).hexdigest(),
            }
        self._send(
            "SQS SendMessage (dead letter)",
            QueueUrl=self._dead_letter_queue_url,
            MessageBody=body,
            MessageAttributes=_string_attributes(attributes),
            **fifo,
        )

    def _send(self, operation: str, **request: object) -> None:
        try:
            self._sqs.send_message(**request)
        except (ClientError, BotoCoreError) as error:
            raise aws.dependency_failure(DEPENDENCY, operation, error) from error

    def retry_after(self, receipt_handle: str, seconds: int) -> None:
        """The message comes back after `seconds` (FIFO too: its group stays locked until then)."""
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
