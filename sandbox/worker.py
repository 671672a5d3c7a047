"""A route's function, run the way Lambda's SQS event source mapping runs it.

The worker long-polls its queue (`MaxNumberOfMessages` = the route's batch size), builds the Lambda
SQS event, calls the handler (imported once per process, like a warm container) with a Lambda-like
context, and then deletes the records the handler did not report in `batchItemFailures`. Reported
records are left alone: they come back when their visibility timeout ends (the handler may have
shortened it), and SQS moves them to the dead-letter queue after the queue's maxReceiveCount. A
handler that raises, times out or returns something Lambda cannot read fails the whole batch (nothing
is deleted); the worker logs it and goes on polling.

On a FIFO queue the order comes from SQS: a message group stays locked while any of its messages is in flight
(received, neither deleted nor visible again), so the records left after a failure hold the group back until they
come back, and the group's next batch starts with them, in order (Lambda's ESM on FIFO queues). The event's records
carry the FIFO attributes Lambda passes (`sandbox.event_source`). Two moto quirks are handled: moto checks the group
lock when a long poll starts, so a second consumer could break the order (the sandbox runs one worker per FIFO
queue); and it returns a failed batch's records out of order unless only the first failed record of each group
stays in flight (`Worker._let_the_first_failure_hold_each_group`).

In-process (tests): `Worker(route=..., queue_url=..., sqs=client, handler="pkg.mod.fn").poll_once()`.
As a process (the sandbox): `python -m sandbox.worker --route register --queue-url URL [--handler ...]`
(`--route-json` passes a route that is not in `functions.routing`, such as one a test builds).
Its log lines are JSON on stderr; its state (idle/busy) is in `--status-file` for the sandbox to read.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from functions.project import SANDBOX_REGION
from functions.project import module_name as project_module_name
from functions.routing import Bus, Route, route
from sandbox.event_source import (
    FIFO_SUFFIX,
    LambdaContext,
    WholeBatchFailed,
    failed_message_ids,
    lambda_sqs_event,
    queue_arn,
    queue_name_from_url,
)

DEFAULT_REGION = SANDBOX_REGION
DEFAULT_WAIT_SECONDS = 1
"""Long-poll wait per ReceiveMessage: short, so a stop request is honoured within a second."""
MAX_RECEIVE_BATCH = 10
EXIT_HANDLER_IMPORT_FAILED = 3
WORKER_LOGGER = "sandbox.worker"
"""The logger name of the worker's own JSON lines (a handler's lines carry their own)."""
INVOKING = "invoking handler"
"""The message of the line the worker logs before each invocation (with the batch's message and event ids)."""
EVENT_SOURCE_ENDPOINT_VARIABLE = "SANDBOX_EVENT_SOURCE_ENDPOINT_URL"
"""The endpoint the worker polls its queue on, when the handler's AWS endpoint (AWS_ENDPOINT_URL) is another (a
fault-injecting proxy): on AWS the event source mapping is Lambda's own poller, which the function's faults do not
reach."""

Handler = Callable[[dict, Any], Any]
Log = Callable[..., None]


class HandlerImportError(RuntimeError):
    """The route's handler cannot be imported (Lambda would fail every invocation with an init error)."""


def log_json(level: str, message: str, **fields: Any) -> None:
    """One JSON log line on stderr, in the same spirit as the functions' Powertools logs."""
    line = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": WORKER_LOGGER,
        "message": message,
        **fields,
    }
    print(json.dumps(line, default=str), file=sys.stderr, flush=True)


@dataclass
class BatchResult:
    """What one invocation did with one batch."""

    request_id: str
    message_ids: list[str]
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    error: str | None = None


def route_to_json(route: Route) -> str:
    """A route's settings as JSON, for `--route-json`."""
    return json.dumps(dataclasses.asdict(route), sort_keys=True)


def route_from_json(text: str) -> Route:
    """The route `route_to_json` wrote."""
    data = json.loads(text)
    return Route(**{**data, "bus": Bus(data["bus"])})


def import_handler(path: str) -> Handler:
    """`pkg.module.function` → the function; `HandlerImportError` with the reason otherwise."""
    module_name, _, function_name = path.rpartition(".")
    if not module_name:
        raise HandlerImportError(f"handler {path!r} is not of the form 'package.module.function'")
    try:
        module = importlib.import_module(project_module_name(module_name))
    except Exception as error:
        raise HandlerImportError(
            f"cannot import handler module {module_name!r}: {type(error).__name__}: {error}"
        ) from error
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise HandlerImportError(f"module {module_name!r} has no callable {function_name!r}")
    return handler


class Worker:
    """Drains one queue into one handler with Lambda's SQS event source semantics."""

    def __init__(
        self,
        *,
        route: Route,
        queue_url: str,
        sqs: Any,
        handler: str | Handler | None = None,
        region: str = DEFAULT_REGION,
        function_name: str | None = None,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        status_path: Path | None = None,
        log: Log = log_json,
    ) -> None:
        self.route = route
        self.queue_url = queue_url
        self.region = region
        self.function_name = function_name or f"registry-autopilot-{route.name}"
        self.wait_seconds = max(0, min(int(wait_seconds), 20))
        self.status_path = status_path
        self.batches = 0
        self._sqs = sqs
        self._handler_spec = handler if handler is not None else route.handler
        self._handler: Handler | None = None
        self._log = log
        self._event_source_arn = queue_arn(queue_url, region=region)

    @property
    def handler_path(self) -> str:
        spec = self._handler_spec
        return spec if isinstance(spec, str) else f"{spec.__module__}.{getattr(spec, '__qualname__', spec)}"

    def load_handler(self) -> Handler:
        """Import the handler once per worker, like a warm Lambda container."""
        if self._handler is None:
            spec = self._handler_spec
            self._handler = import_handler(spec) if isinstance(spec, str) else spec
        return self._handler

    # --- one poll --------------------------------------------------------------------------------------

    def poll_once(
        self, *, wait_seconds: int | None = None, should_stop: Callable[[], bool] = lambda: False
    ) -> BatchResult | None:
        """Receive one batch and run it through the handler; None when the queue had nothing."""
        messages = self._receive(self.wait_seconds if wait_seconds is None else wait_seconds, should_stop)
        if not messages:
            return None
        self.batches += 1
        self.write_status("busy")
        try:
            return self._invoke(messages)
        finally:
            self.write_status("idle")

    def _receive(self, wait_seconds: int, should_stop: Callable[[], bool]) -> list[dict]:
        batch_size = max(1, self.route.batch_size)
        messages = self._receive_some(min(batch_size, MAX_RECEIVE_BATCH), wait_seconds)
        window = self.route.max_batching_window_seconds
        if messages and window > 0 and len(messages) < batch_size:
            # Lambda's batching window: keep gathering until the batch is full or the window closes.
            window_ends = time.monotonic() + window
            while len(messages) < batch_size and time.monotonic() < window_ends and not should_stop():
                remaining = max(0, min(1, math.ceil(window_ends - time.monotonic())))
                messages += self._receive_some(min(batch_size - len(messages), MAX_RECEIVE_BATCH), remaining)
        return messages

    def _receive_some(self, count: int, wait_seconds: int) -> list[dict]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _invoke(self, messages: Sequence[dict]) -> BatchResult:
        context = LambdaContext(
            function_name=self.function_name,
            memory_limit_in_mb=self.route.memory_mb,
            timeout_seconds=self.route.timeout_seconds,
            region=self.region,
        )
        ids = [message["MessageId"] for message in messages]
        result = BatchResult(request_id=context.aws_request_id, message_ids=ids)
        self._log(
            "INFO",
            INVOKING,
            route=self.route.name,
            aws_request_id=context.aws_request_id,
            handler=self.handler_path,
            records=[_describe(message) for message in messages],
        )
        event = lambda_sqs_event(messages, event_source_arn=self._event_source_arn, region=self.region)
        started = time.monotonic()
        failed: set[str]
        try:
            answer = self.load_handler()(event, context)
            answer = json.loads(json.dumps(answer))  # Lambda serialises the answer; so must it be serialisable
            failed = failed_message_ids(answer, ids)
        except WholeBatchFailed as error:
            failed, result.error = set(ids), f"unreadable batch response: {error}"
        except Exception as error:  # noqa: BLE001 - a handler error fails the batch, never the worker
            failed, result.error = set(ids), f"{type(error).__name__}: {error}"
            self._log(
                "ERROR",
                "handler raised: the whole batch will be retried",
                route=self.route.name,
                aws_request_id=context.aws_request_id,
                error=result.error,
                traceback=traceback.format_exc(),
            )
        elapsed = time.monotonic() - started
        if elapsed > self.route.timeout_seconds and result.error is None:
            failed = set(ids)
            result.error = f"timed out after {elapsed:.1f} s (the function timeout is {self.route.timeout_seconds} s)"

        result.failed = [message_id for message_id in ids if message_id in failed]
        result.deleted = self._delete([message for message in messages if message["MessageId"] not in failed])
        if self.fifo and failed:
            self._let_the_first_failure_hold_each_group([m for m in messages if m["MessageId"] in failed])
        self._log(
            "INFO" if result.error is None else "ERROR",
            "batch done",
            route=self.route.name,
            aws_request_id=context.aws_request_id,
            deleted=result.deleted,
            failed=result.failed,
            error=result.error,
            duration_ms=int(elapsed * 1000),
        )
        return result

    @property
    def fifo(self) -> bool:
        return self._event_source_arn.endswith(FIFO_SUFFIX)

    def _let_the_first_failure_hold_each_group(self, failed: Sequence[dict]) -> None:
        """Work around moto 5.2.5 so that a FIFO group comes back in order after a failed batch.

        When several in-flight messages of one group become visible again, moto's next ReceiveMessage skips the
        first of them and returns the later ones (it still counts the others as in flight when it checks the
        group). SQS returns them in order. The group is locked while any of its messages is in flight, so the
        first failed message of each group is enough to hold it: the others are made visible at once (no receive,
        so no receive count), and when the first comes back the whole group follows it, in order. (Equivalent as
        long as the first failure's visibility ends last or with the others, as `sqs_batch` sets it.)
        """
        seen_groups: set[str] = set()
        release = []
        for message in failed:
            group = message.get("Attributes", {}).get("MessageGroupId", "")
            if group in seen_groups:
                release.append(message)
            seen_groups.add(group)
        for start in range(0, len(release), MAX_RECEIVE_BATCH):
            chunk = release[start : start + MAX_RECEIVE_BATCH]
            response = self._sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                    for index, message in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                self._log("WARNING", "could not release a FIFO message", route=self.route.name, failure=failure)

    def _delete(self, messages: Sequence[dict]) -> list[str]:
        deleted: list[str] = []
        for start in range(0, len(messages), MAX_RECEIVE_BATCH):
            chunk = messages[start : start + MAX_RECEIVE_BATCH]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(chunk)
                ],
            )
            ok = {entry["Id"] for entry in response.get("Successful", [])}
            deleted += [message["MessageId"] for index, message in enumerate(chunk) if str(index) in ok]
            for failure in response.get("Failed", []):
                self._log("WARNING", "could not delete a message", route=self.route.name, failure=failure)
        return deleted

    # --- the loop --------------------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Poll until `should_stop()`; errors talking to SQS are logged and retried after a pause."""
        self.write_status("idle")
        while not should_stop():
            try:
                self.poll_once(should_stop=should_stop)
            except Exception as error:  # noqa: BLE001 - e.g. the emulator restarting; keep the worker up
                self._log("ERROR", "polling failed", route=self.route.name, error=f"{type(error).__name__}: {error}")
                self.write_status("idle")
                _sleep_unless(should_stop, 1.0)
        self.write_status("stopped")

    def write_status(self, state: str, **extra: Any) -> None:
        """Atomically record the worker's state for the sandbox's quiet detection."""
        if self.status_path is None:
            return
        status = {
            "route": self.route.name,
            "queue": queue_name_from_url(self.queue_url),
            "pid": os.getpid(),
            "state": state,
            "batches": self.batches,
            "updated": time.time(),
            **extra,
        }
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.status_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(status))
        os.replace(temporary, self.status_path)


def _describe(message: dict) -> dict:
    """The identifiers of one record, for the log (what `replay local` correlates on)."""
    attributes = message.get("Attributes", {})
    described: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiveCount": int(attributes.get("ApproximateReceiveCount", 0)),
    }
    if attributes.get("MessageGroupId"):
        described["messageGroupId"] = attributes["MessageGroupId"]
    try:
        body = json.loads(message.get("Body", ""))
    except ValueError:
        return described
    if isinstance(body, dict):
        described["eventId"] = body.get("id")
        described["detailType"] = body.get("detail-type")
        detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
        key = (detail.get("object") or {}).get("key") if isinstance(detail.get("object"), dict) else None
        if key:
            described["key"] = key
    return described


def _sleep_unless(should_stop: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not should_stop():
        time.sleep(0.05)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--route", required=True, help="route name in functions.routing (batch size, timeout, memory)")
    parser.add_argument("--route-json", help="the route's settings as JSON (route_to_json), instead of routing's")
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--handler", help="package.module.function to call instead of the route's handler")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--function-name")
    parser.add_argument("--wait-seconds", type=int, default=DEFAULT_WAIT_SECONDS)
    parser.add_argument("--status-file", type=Path)
    parser.add_argument("--parent-pid", type=int, help="stop when this process is gone (no orphans)")
    args = parser.parse_args(argv)

    stopping = {"signal": None}

    def request_stop(signum: int, _frame: Any) -> None:
        stopping["signal"] = signum

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def should_stop() -> bool:
        return stopping["signal"] is not None or (args.parent_pid is not None and os.getppid() != args.parent_pid)

    worker = Worker(
        route=route_from_json(args.route_json) if args.route_json else route(args.route),
        queue_url=args.queue_url,
        sqs=boto3.client(
            "sqs", region_name=args.region, endpoint_url=os.environ.get(EVENT_SOURCE_ENDPOINT_VARIABLE) or None
        ),
        handler=args.handler,
        region=args.region,
        function_name=args.function_name,
        wait_seconds=args.wait_seconds,
        status_path=args.status_file,
    )
    worker.write_status("starting")
    try:
        worker.load_handler()
    except HandlerImportError as error:
        log_json(
            "ERROR", "handler cannot be imported", route=args.route, error=str(error), traceback=traceback.format_exc()
        )
        worker.write_status("failed", error=str(error))
        return EXIT_HANDLER_IMPORT_FAILED
    log_json("INFO", "worker ready", route=args.route, queue_url=args.queue_url, handler=worker.handler_path)
    worker.run(should_stop)
    log_json("INFO", "worker stopped", route=args.route, batches=worker.batches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
