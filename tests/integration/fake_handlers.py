"""Tiny handlers for testing the worker itself (not the project's functions).

Each takes the Lambda SQS event and context like a real handler. `CALLS` collects what the in-process
ones saw, so tests can look at the event and context the worker built.
"""

from __future__ import annotations

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
