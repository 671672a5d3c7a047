"""What each error means for a record, from a standard queue and from a FIFO queue (order kept)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from functions.adapters.sqs import QueueControl, is_fifo_queue
from functions.domain.delivery import retry_delay
from functions.domain.errors import NotReady, Rejected, Unavailable
from functions.handlers.sqs_batch import process_batch
from tests.builders import FakeContext, emitted_metrics

STANDARD_ARN = "arn:aws:sqs:us-east-1:123456789012:registry-autopilot-validate"
FIFO_ARN = "arn:aws:sqs:us-east-1:123456789012:registry-autopilot-aliases.fifo"
GROUP = "alias-moves"


@dataclass
class RecordingQueue:
    """`QueueControl`'s methods, recording what the handler asked for (FIFO ids included)."""

    requeued: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)
    visibility: list[tuple[str, int]] = field(default_factory=list)

    def requeue(self, body: str, *, delay_seconds: int, attributes: dict[str, str]) -> None:
        self.requeued.append({"body": body, "delay_seconds": delay_seconds, "attributes": attributes})

    def dead_letter(
        self, body: str, *, attributes: dict[str, str], group_id: str | None = None, deduplication_id: str | None = None
    ) -> None:
        self.dead_letters.append(
            {"body": body, "attributes": attributes, "group_id": group_id, "deduplication_id": deduplication_id}
        )

    def retry_after(self, receipt_handle: str, seconds: int) -> None:
        self.visibility.append((receipt_handle, seconds))


def sqs_event(*bodies: str, fifo: bool, receive_count: int = 1) -> dict:
    """A Lambda SQS event; from a FIFO queue its records carry the attributes Lambda adds for FIFO."""
    records = []
    for index, body in enumerate(bodies):
        attributes = {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1", "SenderId": "AIDA"}
        if fifo:
            attributes |= {
                "MessageGroupId": GROUP,
                "MessageDeduplicationId": f"dedup-{index}",
                "SequenceNumber": f"{18849496460467696128 + index}",
            }
        records.append(
            {
                "messageId": f"msg-{index}",
                "receiptHandle": f"rh-{index}",
                "body": body,
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": FIFO_ARN if fifo else STANDARD_ARN,
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


class Script:
    """A record handler that does what each body says: `ok`, `rejected`, `not-ready` or `unavailable`."""

    def __init__(self) -> None:
        self.handled: list[str] = []

    def __call__(self, record) -> None:  # type: ignore[no-untyped-def]
        self.handled.append(record.message_id)
        outcome = record.body.split(":")[0]
        if outcome == "rejected":
            raise Rejected("bad_request", "cannot be done")
        if outcome == "not-ready":
            raise NotReady("not_yet", "come back later")
        if outcome == "unavailable":
            raise Unavailable("registry_unavailable", "MLflow is down")


def _failed(response: dict) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_standard_queue_failure_does_not_stop_the_records_after_it():
    # GIVEN a standard-queue batch whose second record hits an outage
    queue, handle = RecordingQueue(), Script()
    event = sqs_event("ok:1", "unavailable:2", "ok:3", fifo=False)

    # WHEN it is processed
    response = process_batch(event, FakeContext(), queue=queue, handle=handle)

    # THEN every record was handled and only the failed one is retried, after its backoff
    assert handle.handled == ["msg-0", "msg-1", "msg-2"]
    assert _failed(response) == ["msg-1"]
    assert queue.visibility == [("rh-1", retry_delay(1))]


def test_fifo_failure_fails_the_rest_of_the_batch_in_order_with_the_same_backoff():
    # GIVEN a FIFO batch whose second record hits an outage on its third receive
    queue, handle = RecordingQueue(), Script()
    event = sqs_event("ok:1", "unavailable:2", "ok:3", "ok:4", fifo=True, receive_count=3)

    # WHEN it is processed
    response = process_batch(event, FakeContext(), queue=queue, handle=handle)

    # THEN the records after the failure are not handled, are reported failed in order, and come back with it
    assert handle.handled == ["msg-0", "msg-1"]
    assert _failed(response) == ["msg-1", "msg-2", "msg-3"]
    delay = retry_delay(3)
    assert queue.visibility == [("rh-1", delay), ("rh-2", delay), ("rh-3", delay)]
    assert queue.dead_letters == queue.requeued == []


def test_fifo_batch_that_fails_from_its_first_record_is_reported_not_raised():
    # GIVEN a FIFO batch whose first record fails
    queue, handle = RecordingQueue(), Script()
    event = sqs_event("unavailable:1", "ok:2", fifo=True)

    # WHEN it is processed
    response = process_batch(event, FakeContext(), queue=queue, handle=handle)

    # THEN every record is reported as a failure (the handler returns; Lambda retries them all, in order)
    assert handle.handled == ["msg-0"]
    assert _failed(response) == ["msg-0", "msg-1"]


def test_fifo_not_ready_is_retried_in_place_never_re_enqueued(capsys: pytest.CaptureFixture[str]):
    # GIVEN a FIFO batch whose first record is not ready yet
    queue, handle = RecordingQueue(), Script()
    event = sqs_event("not-ready:1", "ok:2", fifo=True, receive_count=2)

    # WHEN it is processed
    response = process_batch(event, FakeContext(), queue=queue, handle=handle)

    # THEN nothing is re-enqueued (FIFO queues refuse per-message delays): the record and the one after it are
    # failed and come back after the retry backoff, and the deferral is counted
    assert queue.requeued == []
    assert _failed(response) == ["msg-0", "msg-1"]
    assert queue.visibility == [("rh-0", retry_delay(2)), ("rh-1", retry_delay(2))]
    assert emitted_metrics(capsys.readouterr().out)["Deferred"] == [{"reason": "not_yet"}]


def test_standard_not_ready_is_still_re_enqueued_with_a_delay():
    # GIVEN a standard-queue record that is not ready yet
    queue, handle = RecordingQueue(), Script()

    # WHEN it is processed
    response = process_batch(sqs_event("not-ready:1", fifo=False), FakeContext(), queue=queue, handle=handle)

    # THEN it is re-enqueued with the first deferral delay and counts as handled
    assert _failed(response) == []
    assert [(r["delay_seconds"], r["attributes"]) for r in queue.requeued] == [(5, {"deferrals": "1"})]


def test_fifo_rejection_is_dead_lettered_in_its_group_and_the_batch_goes_on():
    # GIVEN a FIFO batch with a bad request between two good ones
    queue, handle = RecordingQueue(), Script()
    event = sqs_event("ok:1", "rejected:2", "ok:3", fifo=True)

    # WHEN it is processed
    response = process_batch(event, FakeContext(), queue=queue, handle=handle)

    # THEN the bad one goes to the dead-letter queue in the record's message group, deduplicated on its message id,
    # and the records after it are handled (a rejection is no failure)
    assert _failed(response) == []
    assert handle.handled == ["msg-0", "msg-1", "msg-2"]
    assert queue.dead_letters == [
        {
            "body": "rejected:2",
            "attributes": {"reason": "bad_request", "error": "cannot be done"},
            "group_id": GROUP,
            "deduplication_id": "msg-1",
        }
    ]


def test_standard_rejection_is_dead_lettered_without_fifo_ids():
    # GIVEN a standard-queue record with a bad request
    queue, handle = RecordingQueue(), Script()

    # WHEN it is processed
    process_batch(sqs_event("rejected:1", fifo=False), FakeContext(), queue=queue, handle=handle)

    # THEN it is dead-lettered with its reason and no message group
    [dead] = queue.dead_letters
    assert (dead["attributes"]["reason"], dead["group_id"], dead["deduplication_id"]) == ("bad_request", None, None)


def test_a_failed_visibility_change_is_logged_and_the_record_still_fails(caplog: pytest.LogCaptureFixture):
    # GIVEN a FIFO batch and a queue that cannot change visibilities
    class BrokenVisibility(RecordingQueue):
        def retry_after(self, receipt_handle: str, seconds: int) -> None:
            raise ConnectionError("SQS unreachable")

    queue, handle = BrokenVisibility(), Script()

    # WHEN a record fails
    response = process_batch(sqs_event("unavailable:1", "ok:2", fifo=True), FakeContext(), queue=queue, handle=handle)

    # THEN both records are still reported (the visibility timeout brings them back) and the problem is logged
    assert _failed(response) == ["msg-0", "msg-1"]
    logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert logged == ["could not shorten the message visibility"] * 2


@pytest.mark.parametrize(
    ("url", "fifo"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/RegistryAutopilot-aliases.fifo", True),
        ("arn:aws:sqs:eu-west-1:123456789012:RegistryAutopilot-aliases-dlq.fifo", True),
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/RegistryAutopilot-RegisterPipelineQueue-abc", False),
        ("", False),
    ],
)
def test_fifo_queues_are_told_by_their_name(url: str, fifo: bool):
    # GIVEN a queue URL or ARN
    # WHEN we ask whether it is a FIFO queue
    # THEN the `.fifo` suffix SQS requires of FIFO queue names decides
    assert is_fifo_queue(url) is fifo


def test_a_fifo_queue_refuses_to_re_enqueue_with_a_delay():
    # GIVEN queue control over a FIFO queue (no call reaches SQS)
    queue = QueueControl(
        object(),
        queue_url="http://127.0.0.1:5000/123456789012/registry-autopilot-aliases.fifo",
        dead_letter_queue_url="http://127.0.0.1:5000/123456789012/registry-autopilot-aliases-dlq.fifo",
    )

    # WHEN a message is re-enqueued with a delay
    # THEN it is refused, saying what to do instead
    with pytest.raises(ValueError, match="FIFO queue cannot re-enqueue a message with a delay: retry it in place"):
        queue.requeue("{}", delay_seconds=5, attributes={})
