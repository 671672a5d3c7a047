"""The SQS side of every handler: one record at a time, partial batch failures, and what each error means.

- success: the record is deleted by the event source mapping;
- `Rejected`: the record is copied to the dead-letter queue with its reason and counts as handled;
- `NotReady`: the record is re-enqueued with a growing delay and counts as handled;
- `Unavailable` or anything unexpected: the record's visibility is shortened to a backoff and it is
  reported as a batch item failure, so SQS retries it and dead-letters it after maxReceiveCount.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.sqs import QueueControl
from functions.domain.delivery import defer_delay, retry_delay
from functions.domain.errors import NotReady, Rejected
from functions.observability import count, logger

DEFERRALS_ATTRIBUTE = "deferrals"

_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def process_batch(
    event: dict,
    context: LambdaContext,
    *,
    queue: QueueControl,
    handle: Callable[[SQSRecord], None],
) -> dict:
    def record_handler(record: SQSRecord) -> None:
        _handle_record(record, queue=queue, handle=handle)

    return process_partial_response(event=event, record_handler=record_handler, processor=_processor, context=context)


def _handle_record(record: SQSRecord, *, queue: QueueControl, handle: Callable[[SQSRecord], None]) -> None:
    logger.remove_keys(["bucket", "key", "model_name", "version", "correlation_id", "replay_name"])
    logger.append_keys(message_id=record.message_id)
    try:
        handle(record)
    except Rejected as error:
        logger.error("rejected: sent to the dead-letter queue", reason=error.reason, error=error.message)
        queue.dead_letter(record.body, attributes={"reason": error.reason, "error": error.message})
        count("Rejected", reason=error.reason)
    except NotReady as error:
        deferrals = _deferrals(record) + 1
        delay = defer_delay(deferrals)
        logger.info("not ready: re-enqueued", reason=error.reason, detail=error.message, delay_seconds=delay)
        queue.requeue(record.body, delay_seconds=delay, attributes={DEFERRALS_ATTRIBUTE: str(deferrals)})
        count("Deferred", reason=error.reason)
    except Exception as error:
        receive_count = int(record.attributes.approximate_receive_count or 1)
        delay = retry_delay(receive_count)
        reason = getattr(error, "reason", type(error).__name__)
        logger.warning(
            "failed: will be retried",
            reason=reason,
            error=str(error)[:1000],
            receive_count=receive_count,
            retry_in_seconds=delay,
            exc_info=not hasattr(error, "reason"),
        )
        count("Retried", reason=reason)
        try:
            queue.retry_after(record.receipt_handle, delay)
        except Exception:  # noqa: BLE001 - the queue's visibility timeout still brings the message back
            logger.exception("could not shorten the message visibility")
        raise


def _deferrals(record: SQSRecord) -> int:
    attribute = record.message_attributes[DEFERRALS_ATTRIBUTE]  # None when absent
    try:
        return int(attribute.string_value or 0) if attribute else 0
    except ValueError:
        return 0
