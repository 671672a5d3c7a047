"""The worker's event source mapping semantics, against an in-memory queue (no network)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from functions.routing import REGISTER, ROUTES, Bus, Route
from sandbox.worker import HandlerImportError, Worker, import_handler, route_from_json, route_to_json

QUEUE_URL = "http://127.0.0.1:5000/123456789012/registry-autopilot-register"


class FakeSqs:
    """Just enough of an SQS client: hands out the waiting messages, records deletes."""

    def __init__(self, bodies: list[str]) -> None:
        self.waiting = [
            {
                "MessageId": f"m-{index}",
                "ReceiptHandle": f"r-{index}",
                "Body": body,
                "MD5OfBody": "x",
                "Attributes": {"ApproximateReceiveCount": "1"},
            }
            for index, body in enumerate(bodies, start=1)
        ]
        self.receive_calls: list[dict] = []
        self.deleted: list[str] = []

    def receive_message(self, **request: object) -> dict:
        self.receive_calls.append(request)
        count = int(request["MaxNumberOfMessages"])  # type: ignore[arg-type]
        batch, self.waiting = self.waiting[:count], self.waiting[count:]
        return {"Messages": batch}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.deleted += [entry["ReceiptHandle"] for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def _worker(sqs: FakeSqs, handler, **kwargs: object) -> tuple[Worker, list[tuple]]:  # type: ignore[no-untyped-def]
    logged: list[tuple] = []
    worker = Worker(
        route=kwargs.pop("route", REGISTER),  # type: ignore[arg-type]
        queue_url=QUEUE_URL,
        sqs=sqs,
        handler=handler,
        log=lambda level, message, **fields: logged.append((level, message, fields)),
        **kwargs,  # type: ignore[arg-type]
    )
    return worker, logged


def test_receives_like_the_event_source_mapping() -> None:
    # GIVEN a worker for the register route
    sqs = FakeSqs([])
    worker, _ = _worker(sqs, lambda event, context: None)

    # WHEN it polls an empty queue
    result = worker.poll_once(wait_seconds=1)

    # THEN it asked for a batch of the route's size with every attribute, and had nothing to do
    assert result is None
    assert sqs.receive_calls == [
        {
            "QueueUrl": QUEUE_URL,
            "MaxNumberOfMessages": min(REGISTER.batch_size, 10),
            "WaitTimeSeconds": 1,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
    ]


def test_deletes_only_the_records_not_reported_as_failed() -> None:
    # GIVEN three messages and a handler that fails the second
    sqs = FakeSqs(["a", "b", "c"])
    worker, _ = _worker(sqs, lambda event, context: {"batchItemFailures": [{"itemIdentifier": "m-2"}]})

    # WHEN the worker polls
    result = worker.poll_once()

    # THEN the others are deleted, the failed one is left for SQS to redeliver
    assert result is not None
    assert sqs.deleted == ["r-1", "r-3"]
    assert result.failed == ["m-2"]
    assert result.error is None


def test_a_handler_error_fails_the_batch_and_the_worker_goes_on() -> None:
    # GIVEN a handler that raises, then a message for the next poll
    sqs = FakeSqs(["a", "b"])
    calls = []

    def handler(event: dict, context: object) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("registry down")

    worker, logged = _worker(sqs, handler, route=dataclasses.replace(REGISTER, batch_size=1))

    # WHEN the worker polls twice
    first = worker.poll_once()
    second = worker.poll_once()

    # THEN the first batch is kept whole and the error logged; the second is handled normally
    assert first is not None
    assert first.deleted == []
    assert first.failed == ["m-1"]
    assert first.error == "RuntimeError: registry down"
    assert any(level == "ERROR" and "handler raised" in message for level, message, _ in logged)
    assert second is not None
    assert second.deleted == ["m-2"]
    assert sqs.deleted == ["r-2"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, "unreadable batch response"),
        ({"batchItemFailures": [], "extra": object()}, "TypeError"),
    ],
    ids=["unknown-identifier", "not-serialisable"],
)
def test_an_answer_lambda_cannot_use_fails_the_whole_batch(answer: object, error: str) -> None:
    # GIVEN a handler whose answer Lambda would refuse
    sqs = FakeSqs(["a", "b"])
    worker, _ = _worker(sqs, lambda event, context: answer)

    # WHEN the worker polls
    result = worker.poll_once()

    # THEN nothing is deleted
    assert result is not None
    assert sqs.deleted == []
    assert error in str(result.error)


def test_a_handler_slower_than_the_function_timeout_fails_the_batch() -> None:
    # GIVEN a route whose function may run 0 s
    sqs = FakeSqs(["a"])
    worker, _ = _worker(sqs, lambda event, context: None, route=dataclasses.replace(REGISTER, timeout_seconds=0))

    # WHEN the worker polls
    result = worker.poll_once()

    # THEN the batch counts as timed out: nothing deleted
    assert result is not None
    assert sqs.deleted == []
    assert "timed out" in str(result.error)


def test_status_file_says_busy_while_the_handler_runs(tmp_path: Path) -> None:
    # GIVEN a worker with a status file, and a handler that reads it
    status = tmp_path / "register.json"
    seen = []
    sqs = FakeSqs(["a"])
    worker, _ = _worker(sqs, lambda event, context: seen.append(json.loads(status.read_text())), status_path=status)

    # WHEN it handles a batch
    worker.poll_once()

    # THEN the handler ran while the status said busy, and it is idle again after
    assert seen[0]["state"] == "busy"
    assert seen[0]["batches"] == 1
    assert json.loads(status.read_text())["state"] == "idle"


def test_the_handler_is_imported_once() -> None:
    # GIVEN a worker naming its handler by path
    worker, _ = _worker(FakeSqs([]), "json.dumps")

    # WHEN the handler is loaded twice
    # THEN it is the same object, like a warm container's
    assert worker.load_handler() is worker.load_handler() is json.dumps


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("no_such_package.module.handler", "cannot import handler module 'no_such_package.module'"),
        ("json.no_such_function", "has no callable 'no_such_function'"),
        ("handler", "is not of the form"),
    ],
)
def test_a_handler_that_cannot_be_imported_is_reported(path: str, problem: str) -> None:
    # GIVEN a handler path that does not resolve
    # WHEN it is imported
    # THEN the error says why
    with pytest.raises(HandlerImportError, match=problem):
        import_handler(path)


@pytest.mark.parametrize(
    "route",
    [
        *ROUTES,
        Route(
            name="aliases",
            handler="tests.integration.fake_handlers.fifo_recorder",
            bus=Bus.PROJECT,
            timeout_seconds=5,
            memory_mb=128,
            batch_size=1,
            max_receive_count=2,
            fifo_group="test-group",
        ),
    ],
    ids=lambda route: f"{route.name}-{route.handler.rsplit('.', 1)[-1]}",
)
def test_a_route_travels_to_the_worker_process_as_json(route: Route) -> None:
    # GIVEN a route of functions.routing, or one a test builds (FIFO, its own handler and settings)
    # WHEN it is written for `--route-json` and read back by the worker process
    text = route_to_json(route)

    # THEN the worker runs exactly that route
    assert route_from_json(text) == route


class FakeFifoSqs(FakeSqs):
    """FakeSqs whose messages belong to message groups, recording visibility changes."""

    def __init__(self, groups: list[str]) -> None:
        super().__init__([f"body-{index}" for index in range(1, len(groups) + 1)])
        for message, group in zip(self.waiting, groups, strict=True):
            message["Attributes"] |= {"MessageGroupId": group, "MessageDeduplicationId": message["MessageId"]}
        self.visibility_changes: list[tuple[str, int]] = []

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.visibility_changes += [(entry["ReceiptHandle"], entry["VisibilityTimeout"]) for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def test_on_a_fifo_queue_the_first_failure_of_each_group_alone_stays_in_flight() -> None:
    # GIVEN a FIFO queue's batch of two groups, and a handler failing everything from the second record on
    sqs = FakeFifoSqs(["g1", "g1", "g2", "g1", "g2"])
    worker = Worker(
        route=REGISTER,
        queue_url=QUEUE_URL + ".fifo",
        sqs=sqs,
        handler=lambda event, context: {
            "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"][1:]]
        },
        log=lambda *args, **fields: None,
    )

    # WHEN the worker polls
    result = worker.poll_once()

    # THEN the succeeded record is deleted; of the failed ones, the first of each group stays in flight (it holds
    # its group) and the later ones are made visible at once, so moto returns the group in order (SQS's behaviour)
    assert result is not None
    assert sqs.deleted == ["r-1"]
    assert result.failed == ["m-2", "m-3", "m-4", "m-5"]
    assert sqs.visibility_changes == [("r-4", 0), ("r-5", 0)]


def test_on_a_standard_queue_failed_records_are_left_alone() -> None:
    # GIVEN a standard queue's batch whose records all fail
    sqs = FakeSqs(["a", "b"])
    worker, _ = _worker(
        sqs, lambda event, context: {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    )

    # WHEN the worker polls
    result = worker.poll_once()

    # THEN nothing is deleted and no visibility is touched (FakeSqs could not change one)
    assert result is not None
    assert (sqs.deleted, result.failed, worker.fifo) == ([], ["m-1", "m-2"], False)


def test_the_context_counts_down_the_routes_timeout_as_powertools_idempotency_reads_it() -> None:
    # GIVEN a route with a 20 s function timeout, and a handler that registers its context with Powertools
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.base import IdempotencyHandler
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

    class Unused(BasePersistenceLayer):  # the remaining time is read without touching a store
        _get_record = _put_record = _update_record = _delete_record = None  # type: ignore[assignment]

    remaining: list[int | None] = []

    def handler(event: dict, context: object) -> None:
        config = IdempotencyConfig(event_key_jmespath="id")
        config.register_lambda_context(context)
        idempotency = IdempotencyHandler(
            function=lambda: None, function_payload={"id": "x"}, config=config, persistence_store=Unused()
        )
        remaining.append(idempotency._get_remaining_time_in_millis())

    worker, _ = _worker(FakeSqs(["a"]), handler, route=dataclasses.replace(REGISTER, timeout_seconds=20))

    # WHEN the worker invokes it
    worker.poll_once()

    # THEN Powertools sees the invocation's real remaining time, the route's timeout counting down (it sets the
    # in-progress expiry of an idempotency record from it)
    (left,) = remaining
    assert left is not None
    assert 18_000 < left <= 20_000
