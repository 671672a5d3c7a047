"""Tiny handlers for testing the worker itself (not the project's functions).

Each takes the Lambda SQS event and context like a real handler. `CALLS` collects what the in-process
ones saw, so tests can look at the event and context the worker built.

`fifo_recorder` is a FIFO route's function for tests: the project's real `process_batch` (FIFO mode, with
`QueueControl` on the queues its environment names) around a record handler that logs each record it handles as
one JSON line (`"message": "fifo record"`, on stderr, so in the worker's log) and then does what the event's
detail says in `outcome`: `ok`, `reject` (bad input: dead-lettered at once), `fail` (a dependency is down:
retried) or `fail-once` (fails on its first receive only).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

CALLS: list[tuple[dict, Any]] = []
FAIL_MARKER = "please-fail"


def succeed(event: dict, context: Any) -> dict:
    CALLS.append((event, context))
    return {"batchItemFailures": []}


def fail_every_record(event: dict, context: Any) -> dict:
    CALLS.append((event, context))
    return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in event["Records"]]}


def fail_marked_records(event: dict, context: Any) -> dict:
    """Fails the records whose body contains `FAIL_MARKER`; the others succeed."""
    CALLS.append((event, context))
    failed = [record["messageId"] for record in event["Records"] if FAIL_MARKER in record["body"]]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def explode(event: dict, context: Any) -> dict:
    CALLS.append((event, context))
    raise RuntimeError("boom: this handler always raises")


FIFO_RECORD_LOG = "fifo record"


def fifo_recorder(event: dict, context: Any) -> dict:
    from functions.adapters.sqs import QueueControl
    from functions.domain.errors import Rejected, Unavailable
    from functions.handlers.sqs_batch import process_batch

    CALLS.append((event, context))
    queue = QueueControl(queue_url=os.environ["QUEUE_URL"], dead_letter_queue_url=os.environ["DEAD_LETTER_QUEUE_URL"])

    def handle(record: Any) -> None:
        started = time.time()
        detail = json.loads(record.body).get("detail", {})
        outcome = detail.get("outcome", "ok")
        receive_count = int(record.attributes.approximate_receive_count)
        time.sleep(float(detail.get("sleep", 0)))
        line = {
            "message": FIFO_RECORD_LOG,
            "test": detail.get("test"),
            "seq": detail.get("seq"),
            "outcome": outcome,
            "message_id": record.message_id,
            "group": record.attributes.message_group_id,
            "sequence_number": record.attributes.sequence_number,
            "deduplication_id": record.attributes.message_deduplication_id,
            "receive_count": receive_count,
            "event_source_arn": record.event_source_arn,
            "started": started,
            "ended": time.time(),
        }
        print(json.dumps(line), file=sys.stderr, flush=True)
        if outcome == "reject":
            raise Rejected("test_rejected", "the test asked for a rejection")
        if outcome == "fail" or (outcome == "fail-once" and receive_count == 1):
            raise Unavailable("test_unavailable", "the test asked for a failure")

    return process_batch(event, context, queue=queue, handle=handle)


def sleep_past_the_timeout(event: dict, context: Any) -> dict:
    """Runs on after the function timeout (a hung dependency without a timeout of its own)."""
    time.sleep(context.get_remaining_time_in_millis() / 1000 + 60)
    return {"batchItemFailures": []}
