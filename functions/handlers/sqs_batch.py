"""The SQS side of every handler: one record at a time, partial batch failures, and what each error means.

- success: the record is deleted by the event source mapping;
- `Rejected`: the record is copied to the dead-letter queue with its reason and counts as handled;
- `NotReady`: the record is re-enqueued with a growing delay and counts as handled;
- `Unavailable` or anything unexpected: the record's visibility is shortened to a backoff and it is
  reported as a batch item failure, so SQS retries it and dead-letters it after maxReceiveCount.

Records from a FIFO queue (a FIFO route: its event source ARN ends with `.fifo`) keep their order:

- they go through Powertools' `SqsFifoPartialProcessor`: once a record fails, the ones after it are not handled
  and are reported as failures too, so nothing overtakes the failed record;
- those records get the failed record's backoff as well, so the group (locked while any of its messages is in
  flight) comes back after the backoff rather than after the full visibility timeout;
- `NotReady` cannot re-enqueue (FIFO queues refuse per-message delays, and a copy would go behind later
  messages): the record is retried in place with the backoff, like `Unavailable`, and so counts towards
  maxReceiveCount;
- `Rejected` is dead-lettered into the FIFO dead-letter queue in the record's own message group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.sqs import is_fifo_queue
from functions.domain.delivery import defer_delay, retry_delay
from functions.domain.errors import NotReady, Rejected
from functions.models.dead_letters import ERROR_ATTRIBUTE, REASON_ATTRIBUTE
from functions.observability import count, logger

DEFERRALS_ATTRIBUTE = "deferrals"
_RECORD_LOG_KEYS = ["message_id", "bucket", "key", "model_name", "version", "correlation_id", "replay_name"]

_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_fifo_processor = SqsFifoPartialProcessor()
# Like `_processor`: a batch whose every record failed is reported record by record instead of raising (Lambda
# reads both the same way, but a raise logs a traceback for what is an ordinary retry).
_fifo_processor.raise_on_entire_batch_failure = False


class BatchQueue(Protocol):
    """What a batch needs of its queue: `functions.adapters.sqs.QueueControl`, or a fake with the same methods."""

    def requeue(self, body: str, *, delay_seconds: int, attributes: dict[str, str]) -> None: ...

    def dead_letter(
        self, body: str, *, attributes: dict[str, str], group_id: str | None = None, deduplication_id: str | None = None
    ) -> None: ...

    def retry_after(self, receipt_handle: str, seconds: int) -> None: ...


@dataclass
class _Batch:
    fifo: bool
    handled: set[str] = field(default_factory=set)
    retry_in_seconds: int | None = None
    """The backoff of the first record that failed."""


def process_batch(
    event: dict,
    context: LambdaContext,
    *,
    queue: BatchQueue,
    handle: Callable[[SQSRecord], None],
) -> PartialItemFailureResponse:
    batch = _Batch(fifo=_from_fifo_queue(event))

    def record_handler(record: SQSRecord) -> None:
        batch.handled.add(record.message_id)
        _handle_record(record, queue=queue, handle=handle, batch=batch)

    processor = _fifo_processor if batch.fifo else _processor
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    if batch.fifo:
        _hold_back_the_rest(event, response, batch=batch, queue=queue)
    return response


def _from_fifo_queue(event: dict) -> bool:
    records = event.get("Records") or []
    return bool(records) and is_fifo_queue(str(records[0].get("eventSourceARN", "")))


def _handle_record(record: SQSRecord, *, queue: BatchQueue, handle: Callable[[SQSRecord], None], batch: _Batch) -> None:
    logger.remove_keys(_RECORD_LOG_KEYS)
    logger.append_keys(message_id=record.message_id)
    try:
        handle(record)
    except Rejected as error:
        logger.error("rejected: sent to the dead-letter queue", reason=error.reason, error=error.message)
        fifo_ids = (
            {"group_id": record.attributes.message_group_id, "deduplication_id": record.message_id}
            if batch.fifo
            else {}
        )
        attributes = {REASON_ATTRIBUTE: error.reason, ERROR_ATTRIBUTE: error.message}
        _or_retry(lambda: queue.dead_letter(record.body, attributes=attributes, **fifo_ids), record, queue, batch)
        count("Rejected", reason=error.reason)
    except NotReady as error:
        if batch.fifo:
            logger.info("not ready: retried in place to keep the order", reason=error.reason, detail=error.message)
            count("Deferred", reason=error.reason)
            _retry_later(record, queue=queue, batch=batch, reason=error.reason, error=error, log=False)
            raise
        deferrals = _deferrals(record) + 1
        delay = defer_delay(deferrals)
        logger.info("not ready: re-enqueued", reason=error.reason, detail=error.message, delay_seconds=delay)
        attributes = {DEFERRALS_ATTRIBUTE: str(deferrals)}
        _or_retry(lambda: queue.requeue(record.body, delay_seconds=delay, attributes=attributes), record, queue, batch)
        count("Deferred", reason=error.reason)
    except Exception as error:
        _failed(record, queue, batch, error)
        raise


def _failed(record: SQSRecord, queue: BatchQueue, batch: _Batch, error: Exception) -> None:
    reason = getattr(error, "reason", type(error).__name__)
    _retry_later(record, queue=queue, batch=batch, reason=reason, error=error, log=True)
    count("Retried", reason=reason)


def _or_retry(send: Callable[[], None], record: SQSRecord, queue: BatchQueue, batch: _Batch) -> None:
    """Dead-letter or re-enqueue; if SQS refuses (`queue_unavailable` ...), the record fails and is retried."""
    try:
        send()
    except Exception as error:
        _failed(record, queue, batch, error)
        raise


def _retry_later(
    record: SQSRecord, *, queue: BatchQueue, batch: _Batch, reason: str, error: Exception, log: bool
) -> None:
    receive_count = int(record.attributes.approximate_receive_count or 1)
    delay = retry_delay(receive_count)
    if batch.retry_in_seconds is None:
        batch.retry_in_seconds = delay
    if log:
        logger.warning(
            "failed: will be retried",
            reason=reason,
            error=str(error)[:1000],
            receive_count=receive_count,
            retry_in_seconds=delay,
            exc_info=not hasattr(error, "reason"),
        )
    _shorten_visibility(queue, record.receipt_handle, delay)


def _hold_back_the_rest(event: dict, response: PartialItemFailureResponse, *, batch: _Batch, queue: BatchQueue) -> None:
    """FIFO: the records skipped after a failure come back with it, after its backoff, in their order."""
    failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    skipped = [r for r in event.get("Records", []) if r["messageId"] in failed and r["messageId"] not in batch.handled]
    if not skipped:
        return
    delay = batch.retry_in_seconds if batch.retry_in_seconds is not None else retry_delay(1)
    logger.remove_keys(_RECORD_LOG_KEYS)
    logger.info(
        "not handled: a record before them in their message group failed; retried after it, in order",
        message_ids=[r["messageId"] for r in skipped],
        retry_in_seconds=delay,
    )
    for record in skipped:
        _shorten_visibility(queue, record["receiptHandle"], delay)


def _shorten_visibility(queue: BatchQueue, receipt_handle: str, seconds: int) -> None:
    try:
        queue.retry_after(receipt_handle, seconds)
    except Exception:  # noqa: BLE001 - the queue's visibility timeout still brings the message back
        logger.exception("could not shorten the message visibility")


def _deferrals(record: SQSRecord) -> int:
    attribute = record.message_attributes[DEFERRALS_ATTRIBUTE]  # None when absent
    try:
        return int(attribute.string_value or 0) if attribute else 0
    except ValueError:
        return 0
