"""The sandbox itself: wiring from routing, delivery to workers, Lambda-like retries, the CLI, clean stops."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from functions.domain.delivery import retry_delay
from functions.routing import EVENT_SOURCE, REGISTER, ROUTES, Bus, Route, project_archive_pattern
from sandbox import REPO_ROOT, Sandbox, SandboxError
from sandbox.worker import DEFAULT_WAIT_SECONDS, Worker
from tests.integration import crash_at_start, fake_handlers
from tests.integration.sandboxes import started

EVENTS = REPO_ROOT / "tests" / "events"

pytestmark = pytest.mark.slow  # the shared sandbox (moto + MLflow + workers), and one more the CLI test starts


@dataclass(frozen=True)
class ScratchQueue:
    url: str
    dead_letter_url: str
    max_receive_count: int


@pytest.fixture
def test_queue(sandbox: Sandbox) -> Iterator[ScratchQueue]:
    """A queue with a 1 s visibility timeout and a DLQ after 2 receives, for driving a worker by hand."""
    sqs = sandbox.client("sqs")
    name = f"worker-test-{uuid.uuid4().hex[:8]}"
    dead_letter_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 2})
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1", "RedrivePolicy": redrive})["QueueUrl"]
    yield ScratchQueue(url=url, dead_letter_url=dead_letter_url, max_receive_count=2)
    sqs.delete_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=dead_letter_url)


def _counts(sandbox: Sandbox, queue_url: str) -> tuple[int, int]:
    attributes = sandbox.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _bodies(sandbox: Sandbox, queue_url: str) -> list[str]:
    messages = sandbox.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return sorted(message["Body"] for message in messages.get("Messages", []))


def _poll_until(condition, *, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# --- wiring ------------------------------------------------------------------------------------------------


def test_sandbox_wires_every_route_as_routing_defines_it(sandbox: Sandbox) -> None:
    # GIVEN the running sandbox and the routes of functions.routing
    sqs, events = sandbox.client("sqs"), sandbox.client("events")

    # WHEN each route's queue, dead-letter queue and rule are read back from the emulator
    # THEN every route is there, with routing's pattern, bus, visibility timeout and maxReceiveCount
    assert sorted(sandbox.wiring) == sorted(route.name for route in ROUTES)
    for route in ROUTES:
        wiring = sandbox.wiring[route.name]
        attributes = sqs.get_queue_attributes(QueueUrl=wiring.queue_url, AttributeNames=["All"])["Attributes"]
        dead_letter_arn = sqs.get_queue_attributes(QueueUrl=wiring.dead_letter_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        bus = "default" if route.bus is Bus.DEFAULT else sandbox.event_bus
        rule = events.describe_rule(Name=wiring.rule_name, EventBusName=bus)
        targets = events.list_targets_by_rule(Rule=wiring.rule_name, EventBusName=bus)["Targets"]

        assert wiring.bus_name == bus
        assert int(attributes["VisibilityTimeout"]) == route.visibility_timeout_seconds
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": dead_letter_arn,
            "maxReceiveCount": route.max_receive_count,
        }
        assert json.loads(rule["EventPattern"]) == route.event_pattern(bucket_name=sandbox.bucket)
        assert [target["Arn"] for target in targets] == [attributes["QueueArn"]]
        # a FIFO route: FIFO queues with content-based deduplication, every event into the route's group
        dead_letter_attributes = sqs.get_queue_attributes(
            QueueUrl=wiring.dead_letter_queue_url, AttributeNames=["All"]
        )["Attributes"]
        for queue_attributes in (attributes, dead_letter_attributes):
            assert queue_attributes.get("FifoQueue", "false") == str(route.fifo).lower()
            assert queue_attributes.get("ContentBasedDeduplication", "false") == str(route.fifo).lower()
        assert wiring.fifo is route.fifo
        assert [target.get("SqsParameters") for target in targets] == [
            {"MessageGroupId": route.fifo_group} if route.fifo else None
        ]


def test_sandbox_creates_bucket_table_bus_and_observer(sandbox: Sandbox) -> None:
    # GIVEN the running sandbox
    s3, dynamodb, events = sandbox.client("s3"), sandbox.client("dynamodb"), sandbox.client("events")

    # WHEN its bucket, idempotency table and project bus are read back
    versioning = s3.get_bucket_versioning(Bucket=sandbox.bucket)
    table = dynamodb.describe_table(TableName=sandbox.idempotency_table)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=sandbox.idempotency_table)["TimeToLiveDescription"]
    observer = events.describe_rule(Name="registry-autopilot-observer", EventBusName=sandbox.event_bus)

    # THEN they are configured as the functions expect
    assert versioning["Status"] == "Enabled"
    # (moto's GetBucketNotificationConfiguration leaves EventBridgeConfiguration out even when it is set;
    # that S3 events reach EventBridge is shown by test_an_mlmodel_upload_is_delivered_to_the_register_worker)
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}
    assert json.loads(observer["EventPattern"]) == project_archive_pattern()
    assert sandbox.artifact_root == f"s3://{sandbox.bucket}/{sandbox.artifact_root_prefix}"


# --- delivery ----------------------------------------------------------------------------------------------


def test_an_mlmodel_upload_is_delivered_to_the_register_worker(sandbox: Sandbox, model_name: str, wait_quiet) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a model folder's weights and its MLmodel key
    weights, mlmodel = f"models/{model_name}/1/model.pkl", f"models/{model_name}/1/{'MLmodel'}"

    # WHEN both objects are written into the bucket and the pipeline settles
    sandbox.put_object(weights, b"weights")
    sandbox.put_object(mlmodel, b"not: [valid")
    wait_quiet(timeout=60)

    # THEN the register worker consumed the MLmodel's event (and only that one: the rule matched)
    delivered = {
        record.get("key")
        for line in sandbox.worker_log_lines([REGISTER.name])
        if line.get("message") == "invoking handler"
        for record in line["records"]
        if str(record.get("key", "")).startswith(f"models/{model_name}/")
    }
    assert delivered == {mlmodel}
    assert sandbox.queue_depths()[REGISTER.name] == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_an_uploaded_model_is_registered_and_its_event_observed(
    sandbox: Sandbox,
    model_name: str,
    upload_model,
    mlflow_client,
    wait_quiet,  # type: ignore[no-untyped-def]
) -> None:
    # GIVEN a real scikit-learn model folder
    # WHEN it is uploaded under models/<name>/1/
    prefix = upload_model(model_name)

    # THEN the pipeline emits its registration, and the registry has the version
    (event,) = sandbox.wait_for_events("Model Version Registered", model_name=model_name, timeout=60)
    assert event["source"] == "registry-autopilot"
    assert event["detail"]["source_uri"] == f"s3://{sandbox.bucket}/{prefix.rstrip('/')}"
    wait_quiet()
    assert [v.version for v in mlflow_client.search_model_versions(f"name='{model_name}'")] == ["1"]


# --- the worker's Lambda semantics -------------------------------------------------------------------------


def test_worker_deletes_only_records_not_reported_as_failed(sandbox: Sandbox, test_queue: ScratchQueue) -> None:
    # GIVEN three messages, one marked to fail, and a worker whose handler fails marked records
    sqs = sandbox.client("sqs")
    for body in ("first", f"second {fake_handlers.FAIL_MARKER}", "third"):
        sqs.send_message(QueueUrl=test_queue.url, MessageBody=body)
    worker = Worker(
        route=REGISTER, queue_url=test_queue.url, sqs=sqs, handler="tests.integration.fake_handlers.fail_marked_records"
    )

    # WHEN the worker polls once
    result = worker.poll_once(wait_seconds=1)

    # THEN the handler got a Lambda SQS event and context, and only the failed record is left (in flight)
    assert result is not None
    assert len(result.message_ids) == 3
    event, context = fake_handlers.CALLS[-1]
    record = event["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(test_queue.url.rsplit("/", 1)[1])
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert context.function_name == f"registry-autopilot-{REGISTER.name}"
    assert 0 < context.get_remaining_time_in_millis() <= REGISTER.timeout_seconds * 1000
    assert len(result.deleted) == 2
    assert len(result.failed) == 1
    assert _counts(sandbox, test_queue.url) == (0, 1)


def test_a_failing_record_is_retried_then_dead_lettered_after_max_receive_count(
    sandbox: Sandbox, test_queue: ScratchQueue
) -> None:
    # GIVEN a message and a worker whose handler reports every record as failed
    sqs = sandbox.client("sqs")
    sqs.send_message(QueueUrl=test_queue.url, MessageBody='{"poison": true}')
    worker = Worker(
        route=REGISTER, queue_url=test_queue.url, sqs=sqs, handler="tests.integration.fake_handlers.fail_every_record"
    )

    # WHEN the worker polls once
    first = worker.poll_once(wait_seconds=1)

    # THEN the record is left for retry: not deleted, in flight until its visibility timeout ends
    assert first is not None
    assert first.deleted == []
    assert first.failed == first.message_ids
    assert _counts(sandbox, test_queue.url) == (0, 1)

    # WHEN the worker keeps polling
    _poll_until(
        lambda: worker.poll_once(wait_seconds=1) is None and _counts(sandbox, test_queue.url) == (0, 0),
        timeout=20,
        what="the message to leave the queue",
    )

    # THEN the handler saw it max_receive_count times, and SQS moved it to the dead-letter queue
    assert worker.batches == test_queue.max_receive_count
    assert _bodies(sandbox, test_queue.dead_letter_url) == ['{"poison": true}']


def test_a_handler_that_raises_does_not_kill_its_worker(sandbox: Sandbox, test_queue: ScratchQueue) -> None:
    # GIVEN a worker process whose handler always raises
    name = f"explode-{uuid.uuid4().hex[:6]}"
    child = sandbox.start_worker(
        REGISTER,
        queue_url=test_queue.url,
        dead_letter_queue_url=test_queue.dead_letter_url,
        handler="tests.integration.fake_handlers.explode",
        name=name,
    )
    sandbox.wait_for_worker(name, child, deadline=time.monotonic() + 30)

    # WHEN a message arrives (and comes back after its 1 s visibility timeout)
    sandbox.client("sqs").send_message(QueueUrl=test_queue.url, MessageBody="hello")

    # THEN each delivery is logged as a handler error, and the worker keeps running and polling
    def raised() -> int:
        return sum(
            1 for line in sandbox.worker_log_lines([name]) if line.get("message", "").startswith("handler raised")
        )

    _poll_until(lambda: raised() >= 2, timeout=20, what="two failed invocations")
    assert child.alive()
    assert sandbox.worker_status(name)["batches"] >= 2

    # AND it stops cleanly when asked
    child.stop()
    assert child.popen.returncode == 0


# --- dead workers and records left in progress ---------------------------------------------------------------


def test_a_killed_route_worker_is_replaced_and_the_sandbox_says_so(
    sandbox: Sandbox,
    model_name: str,
    upload_model,
    mlflow_client,
    wait_quiet,  # type: ignore[no-untyped-def]
) -> None:
    # GIVEN the register route's worker
    before = len(sandbox.worker_replacements)
    killed = sandbox.info()["pids"]["workers"][REGISTER.name]

    # WHEN it is killed (SIGKILL: nothing of it runs any more)
    os.kill(killed, signal.SIGKILL)

    # THEN the sandbox replaces it with a new process and logs one line saying which, how it ended, and the new pid
    _poll_until(lambda: len(sandbox.worker_replacements) > before, timeout=30, what="the replacement")
    (replacement,) = [r for r in sandbox.worker_replacements[before:] if r.pid == killed]
    assert (replacement.route, replacement.ended) == (REGISTER.name, "killed by SIGKILL")
    assert replacement.replacement_pid == sandbox.info()["pids"]["workers"][REGISTER.name] != killed
    logged = [json.loads(line) for line in sandbox.log_path("sandbox").read_text().splitlines()]
    assert {
        "message": "worker replaced",
        "route": REGISTER.name,
        "pid": killed,
        "ended": "killed by SIGKILL",
        "replacement_pid": replacement.replacement_pid,
    }.items() <= [line for line in logged if line.get("pid") == killed][-1].items()
    sandbox.check_running()  # a replaced worker does not stop the sandbox

    # AND the new worker registers the next upload. It is sent once the new worker polls and the killed one's last
    # receive is over: moto still answers a receive whose client died (for up to its wait time), and a message it
    # hands that receive stays in flight until its visibility timeout, as on SQS.
    _poll_until(
        lambda: (sandbox.worker_status(REGISTER.name) or {}).get("pid") == replacement.replacement_pid,
        timeout=60,
        what="the new worker to poll",
    )
    time.sleep(DEFAULT_WAIT_SECONDS + 1)
    upload_model(model_name)
    sandbox.wait_for_events("Model Version Registered", model_name=model_name, timeout=90)
    wait_quiet(timeout=60)
    assert [v.version for v in mlflow_client.search_model_versions(f"name='{model_name}'")] == ["1"]


@pytest.mark.parametrize("killed", ["longer ago than the function timeout", "a moment ago"])
def test_an_in_progress_record_left_by_a_killed_invocation_does_not_hold_its_upload(
    sandbox: Sandbox,
    model_name: str,
    mlflow_client,
    wait_quiet,
    killed: str,  # type: ignore[no-untyped-def]
) -> None:
    from functions.adapters.idempotency import IdempotentCall
    from functions.domain.registration import UploadedObject
    from functions.handlers.register import IDEMPOTENCY_KEY_PREFIX
    from reliability.scenarios import put_events, s3_event, upload_model

    # GIVEN an upload whose event is not delivered yet
    key = upload_model(sandbox, model_name, "1", 0.9, notify=False)
    entry = s3_event(sandbox, key)
    obj = json.loads(entry["Detail"])["object"]
    payload = UploadedObject(sandbox.bucket, key, etag=obj["etag"], version_id=obj["version-id"]).as_payload()
    # AND the record an invocation killed while registering it left, written by Powertools as the handler's call
    # writes it: INPROGRESS, with an in-progress expiry of "then + the invocation's remaining time"
    store = IdempotentCall(
        lambda payload: payload,
        table_name=sandbox.idempotency_table,
        ttl_seconds=3600,
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    ).store
    remaining_ms = 0 if killed.startswith("longer") else 4000
    store.save_inprogress(data={**payload, "attempt": "killed"}, remaining_time_in_millis=remaining_ms)
    assert store.get_record({**payload, "attempt": "next"}).status == "INPROGRESS"

    # WHEN the upload's event is delivered
    put_events(sandbox, [entry])
    sandbox.wait_for_events("Model Version Registered", model_name=model_name, timeout=90)
    wait_quiet(timeout=60)

    # THEN it is registered once and its record is complete, with nothing dead-lettered
    assert [v.version for v in mlflow_client.search_model_versions(f"name='{model_name}'")] == ["1"]
    assert store.get_record({**payload, "attempt": "next"}).status == "COMPLETED"
    assert [d for d in sandbox.dlq_messages(REGISTER.name) if d.key == key] == []
    held = [
        line
        for line in sandbox.worker_log_lines([REGISTER.name])
        if line.get("key") == key and line.get("reason") == "attempt_in_progress"
    ]
    if killed.startswith("longer"):
        # AND a record whose invocation's time has run out is taken over at once
        assert held == []
    else:
        # AND a record whose invocation could still be running holds the upload only until that time is up
        assert held
        assert all(line["receive_count"] < REGISTER.max_receive_count for line in held)


@pytest.fixture
def crashing_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox of its own (it ends in a crash loop): one register route whose handler cannot start when told."""
    running = Sandbox(
        workdir=tmp_path,
        routes=[REGISTER],
        handlers={REGISTER.name: "tests.integration.crash_at_start.handler"},
        handle_signals=False,
    )
    started(running, "the crashing sandbox")
    yield running
    running.stop()
    crash_at_start.marker_for(running.aws_port).unlink(missing_ok=True)


def test_workers_that_keep_dying_at_start_stop_the_sandbox_with_the_reason(crashing_sandbox: Sandbox) -> None:
    # GIVEN a route whose function can no longer start (its configuration broke)
    crash_at_start.marker_for(crashing_sandbox.aws_port).touch()

    # WHEN its worker dies, and each replacement dies at start
    os.kill(crashing_sandbox.info()["pids"]["workers"][REGISTER.name], signal.SIGKILL)

    # THEN after 3 deaths at start the sandbox stops replacing it and says why
    def crash_loop() -> bool:
        try:
            crashing_sandbox.check_running()
        except SandboxError:
            return True
        return False

    _poll_until(crash_loop, timeout=120, what="the crash loop to be reported")
    with pytest.raises(
        SandboxError, match=r"route 'register' are in a crash loop: 3 died within 120 s .*exited with code 7"
    ):
        crashing_sandbox.wait_until_quiet(timeout=5)
    assert [r.ended for r in crashing_sandbox.worker_replacements] == ["killed by SIGKILL", "exited with code 7"]


def test_a_worker_past_its_function_timeout_is_killed_and_replaced(tmp_path: Path) -> None:
    # GIVEN a route with a 2 s function timeout whose handler runs on past it
    with Sandbox(
        workdir=tmp_path,
        routes=[replace(REGISTER, timeout_seconds=2)],
        handlers={REGISTER.name: "tests.integration.fake_handlers.sleep_past_the_timeout"},
        handle_signals=False,
    ) as sandbox:
        stuck = sandbox.info()["pids"]["workers"][REGISTER.name]

        # WHEN a message reaches it
        sandbox.client("sqs").send_message(QueueUrl=sandbox.wiring[REGISTER.name].queue_url, MessageBody="{}")

        # THEN the sandbox ends the invocation as Lambda would: the worker is killed and replaced, and that is no
        # crash loop (it took a batch)
        _poll_until(lambda: sandbox.worker_replacements, timeout=60, what="the timed-out worker's replacement")
        (replacement,) = sandbox.worker_replacements[:1]
        assert replacement.pid == stuck
        assert replacement.took_a_batch is True
        assert replacement.ended.startswith("timed out after ")
        assert replacement.ended.endswith("(function timeout 2 s), killed")
        sandbox.check_running()


# --- FIFO routes --------------------------------------------------------------------------------------------

FIFO_ROUTE = Route(
    name="aliases",  # a route name of functions.routing: its pattern (project events) is the one wired
    handler="tests.integration.fake_handlers.fifo_recorder",
    bus=Bus.PROJECT,
    timeout_seconds=10,
    memory_mb=128,
    batch_size=1,  # with one record per batch, which records a failure holds back does not depend on timing
    max_receive_count=2,
    description="A FIFO route for tests: the real process_batch around a recording handler",
    fifo_group="test-moves",
)


@pytest.fixture(scope="module")
def fifo_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox of its own wiring only FIFO_ROUTE (so no real handler shares its project events)."""
    running = Sandbox(
        workdir=tmp_path_factory.mktemp("fifo-sandbox"),
        routes=[FIFO_ROUTE],
        visibility_timeout_seconds=20,  # a failed record comes back sooner only through its backoff
        handle_signals=False,
    )
    started(running, "the FIFO sandbox")
    yield running
    running.stop()


def _put_project_events(sandbox: Sandbox, test: str, outcomes: list[str]) -> None:
    """One PutEvents call per event, in order: Promotion Requested with the test id, a sequence and an outcome."""
    events = sandbox.client("events")
    for seq, outcome in enumerate(outcomes):
        detail = {"test": test, "seq": seq, "outcome": outcome, "sleep": 0.05}
        response = events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": "Promotion Requested",
                    "Detail": json.dumps(detail),
                    "EventBusName": sandbox.event_bus,
                }
            ]
        )
        assert response["FailedEntryCount"] == 0


def _fifo_records(sandbox: Sandbox, test: str) -> list[dict]:
    """What the FIFO route's function handled for `test`, in the order it handled them."""
    lines = [
        line
        for line in sandbox.worker_log_lines()
        if line.get("message") == fake_handlers.FIFO_RECORD_LOG and line.get("test") == test
    ]
    return sorted(lines, key=lambda line: line["started"])


def _dead_letters(sandbox: Sandbox, test: str) -> list:
    return [
        letter
        for letter in sandbox.dlq_messages(FIFO_ROUTE.name, delete=True)
        if ((letter.event or {}).get("detail") or {}).get("test") == test
    ]


def test_a_fifo_route_delivers_project_events_to_its_worker_in_order(fifo_sandbox: Sandbox) -> None:
    # GIVEN a FIFO route wired by the sandbox, and eight project events put on the bus one after the other
    test = uuid.uuid4().hex
    _put_project_events(fifo_sandbox, test, ["ok"] * 8)

    # WHEN the pipeline settles
    fifo_sandbox.wait_until_quiet(timeout=60)

    # THEN the worker handled each event once, in the order they were put, one batch at a time, every record in
    # the route's message group with the FIFO attributes Lambda passes, from the FIFO queue
    records = _fifo_records(fifo_sandbox, test)
    assert [record["seq"] for record in records] == list(range(8))
    assert {record["group"] for record in records} == {FIFO_ROUTE.fifo_group}
    assert all(record["event_source_arn"].endswith(".fifo") for record in records)
    assert all(record["deduplication_id"] for record in records)
    sequence_numbers = [int(record["sequence_number"]) for record in records]
    assert sequence_numbers == sorted(sequence_numbers)
    assert all(later["started"] >= earlier["ended"] for earlier, later in zip(records, records[1:], strict=False))
    assert _dead_letters(fifo_sandbox, test) == []


def test_a_failing_record_holds_its_group_back_then_reaches_the_fifo_dlq(fifo_sandbox: Sandbox) -> None:
    # GIVEN three events in the FIFO route's group, the second of which always fails
    test = uuid.uuid4().hex
    _put_project_events(fifo_sandbox, test, ["ok", "fail", "ok"])

    # WHEN the pipeline settles (the failing record is retried after its backoff, then dead-lettered)
    fifo_sandbox.wait_until_quiet(timeout=90)

    # THEN the failing record was tried max_receive_count times, nothing after it was handled before it left, and
    # SQS moved it to the FIFO dead-letter queue in its group; the record after it was then handled
    records = _fifo_records(fifo_sandbox, test)
    assert [(r["seq"], r["receive_count"]) for r in records] == [(0, 1), (1, 1), (1, 2), (2, 1)]
    first_try, last_try = records[1], records[2]
    assert retry_delay(1) - 0.5 <= last_try["started"] - first_try["ended"] < 10  # the backoff, not the visibility
    assert records[3]["started"] >= last_try["ended"]
    (letter,) = _dead_letters(fifo_sandbox, test)
    assert letter.event["detail"]["seq"] == 1
    assert letter.message_group_id == FIFO_ROUTE.fifo_group
    assert letter.reason is None  # moved by SQS's redrive policy, not by the handler


def test_a_rejected_record_is_dead_lettered_in_its_group_and_the_group_goes_on(fifo_sandbox: Sandbox) -> None:
    # GIVEN a bad request followed by a good one in the FIFO route's group
    test = uuid.uuid4().hex
    _put_project_events(fifo_sandbox, test, ["reject", "ok"])

    # WHEN the pipeline settles
    fifo_sandbox.wait_until_quiet(timeout=60)

    # THEN the handler sent the bad one to the FIFO dead-letter queue at once (QueueControl with the record's group
    # and a deduplication id), with its reason, and went on with the next
    records = _fifo_records(fifo_sandbox, test)
    assert [(r["seq"], r["receive_count"]) for r in records] == [(0, 1), (1, 1)]
    (letter,) = _dead_letters(fifo_sandbox, test)
    assert (letter.event["detail"]["seq"], letter.reason) == (0, "test_rejected")
    assert letter.message_group_id == FIFO_ROUTE.fifo_group


def test_a_fifo_queue_gets_one_worker(fifo_sandbox: Sandbox) -> None:
    # GIVEN the FIFO route's queue, drained by its worker
    wiring = fifo_sandbox.wiring[FIFO_ROUTE.name]

    # WHEN a second worker is asked for on that queue
    # THEN it is refused: moto could hand it a later message of a group still in flight
    with pytest.raises(SandboxError, match="already has a worker .* a FIFO queue gets one"):
        fifo_sandbox.start_worker(FIFO_ROUTE, queue_url=wiring.queue_url, name="second-consumer")


@pytest.fixture
def fifo_test_queue(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScratchQueue]:
    """A FIFO queue (30 s visibility) with a FIFO DLQ, named in QUEUE_URL/DEAD_LETTER_QUEUE_URL for the handler."""
    sqs = sandbox.client("sqs")
    name = f"worker-test-{uuid.uuid4().hex[:8]}"
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    dead_letter_url = sqs.create_queue(QueueName=f"{name}-dlq.fifo", Attributes=fifo)["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 3})
    url = sqs.create_queue(
        QueueName=f"{name}.fifo", Attributes={**fifo, "VisibilityTimeout": "30", "RedrivePolicy": redrive}
    )["QueueUrl"]
    monkeypatch.setenv("QUEUE_URL", url)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dead_letter_url)
    yield ScratchQueue(url=url, dead_letter_url=dead_letter_url, max_receive_count=3)
    sqs.delete_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=dead_letter_url)


def test_worker_on_a_fifo_queue_keeps_the_group_in_order_after_a_failure(
    sandbox: Sandbox, fifo_test_queue: ScratchQueue
) -> None:
    # GIVEN three messages of one group, the second failing on its first receive, and a worker with batches of 10
    sqs = sandbox.client("sqs")
    test = uuid.uuid4().hex

    def send(seq: int, outcome: str) -> None:
        body = json.dumps({"detail": {"test": test, "seq": seq, "outcome": outcome}})
        sqs.send_message(QueueUrl=fifo_test_queue.url, MessageBody=body, MessageGroupId="g")

    for seq, outcome in enumerate(["ok", "fail-once", "ok"]):
        send(seq, outcome)
    worker = Worker(
        route=replace(FIFO_ROUTE, batch_size=10),
        queue_url=fifo_test_queue.url,
        sqs=sqs,
        handler="tests.integration.fake_handlers.fifo_recorder",
    )

    # WHEN the worker polls once
    first = worker.poll_once(wait_seconds=1)

    # THEN the first record is deleted; the failed one and the one after it (not handled) are left: the failed one
    # in flight, holding the group until its backoff ends (not the 30 s visibility), the other behind it
    assert first is not None
    assert first.deleted == first.message_ids[:1]
    assert first.failed == first.message_ids[1:]
    assert _counts(sandbox, fifo_test_queue.url) == (1, 1)
    event, _ = fake_handlers.CALLS[-1]
    assert [r["attributes"]["MessageGroupId"] for r in event["Records"]] == ["g", "g", "g"]
    assert all(r["attributes"]["SequenceNumber"].isdigit() for r in event["Records"])

    # WHEN a fourth message joins the group during the backoff
    send(3, "ok")

    # THEN the group stays locked: nothing is received although two of its messages are visible
    assert worker.poll_once(wait_seconds=0) is None
    assert _counts(sandbox, fifo_test_queue.url) == (2, 1)

    # WHEN the backoff has passed
    _poll_until(lambda: _counts(sandbox, fifo_test_queue.url)[1] == 0, timeout=retry_delay(1) + 5, what="backoff")
    second = worker.poll_once(wait_seconds=1)

    # THEN the group comes back in order, starting with the failed record, and is handled
    assert second is not None
    _, *rest = first.message_ids
    assert second.message_ids[:2] == rest
    assert second.failed == []
    handled = [json.loads(r["body"])["detail"]["seq"] for r in fake_handlers.CALLS[-1][0]["Records"]]
    assert handled == [1, 2, 3]
    assert _counts(sandbox, fifo_test_queue.url) == (0, 0)
    assert _bodies(sandbox, fifo_test_queue.dead_letter_url) == []


def test_queue_control_dead_letters_into_a_fifo_queue_with_group_and_deduplication(
    sandbox: Sandbox, fifo_test_queue: ScratchQueue
) -> None:
    # GIVEN queue control over a FIFO queue and its FIFO dead-letter queue
    from functions.adapters.sqs import QueueControl

    sqs = sandbox.client("sqs")
    control = QueueControl(sqs, queue_url=fifo_test_queue.url, dead_letter_queue_url=fifo_test_queue.dead_letter_url)

    # WHEN the same record is dead-lettered twice (a retried invocation), and one without a known group
    control.dead_letter("bad", attributes={"reason": "r"}, group_id="g", deduplication_id="message-1")
    control.dead_letter("bad", attributes={"reason": "r"}, group_id="g", deduplication_id="message-1")
    control.dead_letter("worse", attributes={"reason": "r"})

    # THEN SQS kept one copy of the first, in its group, and put the second in the default group
    messages = sqs.receive_message(
        QueueUrl=fifo_test_queue.dead_letter_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert sorted((m["Body"], m["Attributes"]["MessageGroupId"]) for m in messages) == [
        ("bad", "g"),
        ("worse", "dead-letters"),
    ]


# --- the command line --------------------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}


def _read_line(stream, timeout: float) -> str:  # type: ignore[no-untyped-def]
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None


def _live_processes_in_groups(group_ids: set[int]) -> list[int]:
    """Processes (not zombies) whose process group is one of `group_ids`."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group in group_ids and state != "Z":
            alive.append(int(entry.name))
    return alive


def test_cli_sandbox_prints_one_json_line_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # GIVEN `python -m sandbox --json`
    with open(tmp_path / "stderr.log", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--json", "--workdir", str(tmp_path / "work")],
            cwd=REPO_ROOT,
            env=_clean_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            # WHEN it is ready
            info = json.loads(_read_line(process.stdout, timeout=90))

            # THEN it said so in one JSON line with what clients need
            for key in ("mlflow_tracking_uri", "aws_endpoint_url", "bucket", "artifact_root", "event_bus", "workdir"):
                assert info[key], key
            assert set(info["queues"]) == {route.name for route in ROUTES}
            children = {info["pids"]["moto"], info["pids"]["mlflow"], *info["pids"]["workers"].values()}
            assert _live_processes_in_groups(children)

            # WHEN it receives SIGTERM
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()

    # THEN it exits 0 without printing more, and none of its processes (nor theirs) is left
    assert code == 0, (tmp_path / "stderr.log").read_text()
    assert process.stdout.read() == ""
    assert _live_processes_in_groups(children) == []


def test_a_taken_port_is_refused_with_what_to_do() -> None:
    # GIVEN a port somebody listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        # WHEN the sandbox is asked to use it
        # THEN it refuses before starting anything, naming the option to change
        with pytest.raises(SandboxError, match=rf"port {port} on 127\.0\.0\.1 is already in use.*--aws-port"):
            Sandbox(aws_port=port).start()

        # AND the command line (here `python -m replay sandbox`, the same command) says the same, with exit code 2
        result = subprocess.run(
            [sys.executable, "-m", "replay", "sandbox", "--mlflow-port", str(port)],
            cwd=REPO_ROOT,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--mlflow-port" in result.stderr
    assert result.stdout == ""


def test_a_server_that_cannot_start_stops_what_was_already_started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a port taken after the sandbox looked (a race, simulated by skipping the port check)
    monkeypatch.setattr("sandbox.core.check_port_free", lambda *args, **kwargs: None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        sandbox = Sandbox(aws_port=taken.getsockname()[1], workdir=tmp_path)

        # WHEN the sandbox starts
        # THEN moto's failure is reported with its output
        with pytest.raises(SandboxError, match=r"the moto server did not start: .*exited with code"):
            sandbox.start()

    # AND the MLflow server started alongside it is gone too
    pids = sandbox.info()["pids"]
    assert _live_processes_in_groups({pids["moto"], pids["mlflow"]}) == []


def test_cli_local_replays_a_recorded_s3_event_against_a_seeded_bucket(
    sandbox: Sandbox, model_name: str, sklearn_model_dir: Path, tmp_path: Path
) -> None:
    # GIVEN a recorded AWS event for a plain upload (from another bucket) and a seed holding that model
    recorded = json.loads((EVENTS / "s3_object_created_aws.json").read_text())
    key = f"models/{model_name}/2026-11-20/MLmodel"
    recorded["detail"]["object"]["key"] = key
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(recorded))
    seed = tmp_path / "seed"
    shutil.copytree(sklearn_model_dir, (seed / key).parent)

    # WHEN `replay local` replays it into the running sandbox
    result = subprocess.run(
        [
            *(sys.executable, "-m", "replay", "local", "--json", "--timeout", "60"),
            *("--attach", json.dumps(sandbox.info()), "--seed", str(seed), str(event_file)),
        ],
        cwd=REPO_ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    # THEN it reports the registered version for the event, and the registry holds it
    assert result.returncode == 0, result.stderr
    first, registry = (json.loads(line) for line in result.stdout.splitlines())
    assert first["routes"] == [REGISTER.name]
    assert first["registered"] == [
        {
            "model": model_name,
            "version": "1",
            "source": f"s3://{sandbox.bucket}/models/{model_name}/2026-11-20",
            "already_registered": False,
        }
    ]
    # (what follows a verdict, such as alias moves, belongs to other routes' tests)
    assert {"Model Version Registered", "Model Version Validated"} <= {e["detail_type"] for e in first["emitted"]}
    assert model_name in {model["name"] for model in registry["registry"]}
