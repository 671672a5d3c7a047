"""`python -m ops backfill`'s planning, sending and the alias hold, with fakes."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from functions.domain.errors import Unavailable
from functions.domain.registration import UploadedObject
from functions.domain.tags import BACKFILL_HOLD_ALIASES, BACKFILL_PROMOTE, BACKFILL_TAG
from functions.models.s3 import S3ObjectEvent
from functions.routing import REPLAY_SOURCE, route
from ops.backfill import (
    BackfillError,
    Progress,
    _dead_letter_line,
    event_for,
    listing_prefixes,
    plan,
    read_dead_lettered,
    registered_identities,
    select,
    send_all,
)
from ops.redrive import RouteQueues
from ops.target import HeadedObject, ListedObject, Target
from replay.send import Sending
from tests.builders import AliasWorld
from tests.fakes import FakeRegistry

BUCKET = "artifacts"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
RUN = "0123456789abcdef0123456789abcdef"
MODEL_ID = "m-" + "a" * 32


def listed(key: str, minutes: int = 0) -> ListedObject:
    return ListedObject(key=key, size=100, etag='"e-' + key + '"', last_modified=T0 + timedelta(minutes=minutes))


def head(obj: ListedObject, version: str | None = "v1") -> HeadedObject:
    return HeadedObject(obj.key, obj.size, obj.etag, version, obj.last_modified)


def test_every_layout_is_mapped_by_the_register_routes_code_oldest_first():
    # GIVEN a listing with the three layouts, files that are no MLmodel, a key outside any layout and bad keys
    objects = [
        listed("models/churn/2/MLmodel", 5),
        listed("models/churn/1/MLmodel", 1),
        listed("models/churn/1/model.pkl", 0),
        listed(f"mlflow/7/models/{MODEL_ID}/artifacts/MLmodel", 3),
        listed(f"mlflow/7/{RUN}/artifacts/model/MLmodel", 2),
        listed("mlflow/notes/MLmodel", 4),
        listed("models/bad name/1/MLmodel", 6),
        listed("models/-dash/1/MLmodel", 7),
    ]

    # WHEN the listing is selected
    selection = select(objects, artifact_root_prefix="mlflow")

    # THEN the model locations are candidates, oldest upload first, named as the register route names them
    assert [(c.key, c.layout, c.model) for c in selection.candidates] == [
        ("models/churn/1/MLmodel", "plain", "churn"),
        (f"mlflow/7/{RUN}/artifacts/model/MLmodel", "run_artifact", "(experiment 7)"),
        (f"mlflow/7/models/{MODEL_ID}/artifacts/MLmodel", "logged_model", "(experiment 7)"),
        ("models/churn/2/MLmodel", "plain", "churn"),
    ]
    # AND the rest is skipped or refused with the register route's reasons
    assert [(s.key, s.reason) for s in selection.skipped] == [("mlflow/notes/MLmodel", "not_a_model_location")]
    assert [(s.key, s.reason) for s in selection.refused] == [
        ("models/bad name/1/MLmodel", "invalid_key"),
        ("models/-dash/1/MLmodel", "invalid_model_name"),
    ]
    assert selection.listed == len(objects)


def test_since_and_until_narrow_by_last_modified():
    # GIVEN three uploads a minute apart
    objects = [listed(f"models/m/{n}/MLmodel", n) for n in range(3)]

    # WHEN only the middle minute is asked for
    selection = select(
        objects, artifact_root_prefix="mlflow", since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2)
    )

    # THEN only it is a candidate, and the others say why they are left out
    assert [c.key for c in selection.candidates] == ["models/m/1/MLmodel"]
    assert sorted(s.reason for s in selection.skipped) == ["after_until", "before_since"]


def test_a_prefix_must_lie_inside_a_model_location():
    assert listing_prefixes(None, "mlflow") == ["models/", "mlflow/"]
    assert listing_prefixes("models/churn/", "mlflow") == ["models/churn/"]
    with pytest.raises(BackfillError, match="outside the model locations"):
        listing_prefixes("logs/", "mlflow")


def test_registered_identities_and_vanished_objects_are_not_sent():
    # GIVEN three candidates: one registered already (by the identity the register route records), one gone
    objects = [listed(f"models/m/{n}/MLmodel", n) for n in range(3)]
    selection = select(objects, artifact_root_prefix="mlflow")
    heads = {objects[0].key: head(objects[0]), objects[1].key: head(objects[1]), objects[2].key: None}
    registered = {UploadedObject(BUCKET, objects[0].key, etag=objects[0].etag.strip('"'), version_id="v1").identity}

    # WHEN it is planned
    result = plan(selection, heads, registered, bucket=BUCKET)

    # THEN only the unregistered one that still exists is sent; the gone one is refused with its reason
    assert [s.candidate.key for s in result.to_send] == [objects[1].key]
    assert [s.candidate.key for s in result.already_registered] == [objects[0].key]
    assert [(s.key, s.reason) for s in result.refused] == [(objects[2].key, "object_gone")]


def test_a_registry_that_cannot_list_identities_gets_everything_sent():
    objects = [listed("models/m/1/MLmodel")]
    result = plan(
        select(objects, artifact_root_prefix="mlflow"), {objects[0].key: head(objects[0])}, None, bucket=BUCKET
    )
    assert len(result.to_send) == 1
    assert not result.registry_lists


@pytest.mark.parametrize(("promote", "mode"), [(False, BACKFILL_HOLD_ALIASES), (True, BACKFILL_PROMOTE)])
def test_the_event_is_what_s3_would_have_sent_under_the_replay_source(promote, mode):
    # GIVEN a planned object (versioned bucket)
    objects = [listed("models/churn/1/MLmodel")]
    [send] = plan(
        select(objects, artifact_root_prefix="mlflow"), {objects[0].key: head(objects[0])}, set(), bucket=BUCKET
    ).to_send

    # WHEN its event is built
    sending = event_for(send, bucket=BUCKET, project_bus="project-bus", promote=promote)

    # THEN it goes to the default bus under the replay source, and the register rule's pattern matches it
    entry = sending.entry
    assert entry is not None
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (REPLAY_SOURCE, "Object Created", "default")
    assert entry["Time"] == objects[0].last_modified
    pattern = route("register").event_pattern(bucket_name=BUCKET)
    assert entry["Source"] in pattern["source"]
    # AND the register route parses it into the same identity the plan checked, with the alias mode
    event = S3ObjectEvent.model_validate(
        {
            "version": "0",
            "id": "1",
            "source": entry["Source"],
            "account": "1",
            "time": entry["Time"].isoformat(),
            "region": "us-east-1",
            "resources": entry["Resources"],
            "detail-type": entry["DetailType"],
            "detail": json.loads(entry["Detail"]),
        }
    )
    uploaded = UploadedObject(
        BUCKET, event.detail.object.key, etag=event.detail.object.etag, version_id=event.detail.object.version_id
    )
    assert uploaded.identity == send.identity
    assert (event.detail.object.size, event.detail.backfill) == (100, mode)


def sendings(count: int) -> list[Sending]:
    return [Sending(f"s{n}", {"Source": "x"}) for n in range(count)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_sending_keeps_to_the_rate_in_order():
    # GIVEN 25 events and a rate of 5 a second
    clock, put_at = Clock(), []

    def put(batch):
        put_at.append((clock.now, [s.label for s in batch]))
        for sending in batch:
            sending.event_id = "id"

    # WHEN they are sent
    outcome = send_all(sendings(25), put=put, probe=lambda: None, rate=5, clock=clock, sleep=clock.sleep)

    # THEN every one is sent, in order, 5 a second
    assert outcome.sent == 25
    assert outcome.stopped is None
    assert [at for at, _ in put_at] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [label for _, labels in put_at for label in labels] == [f"s{n}" for n in range(25)]


def test_mlflow_going_down_stops_the_run_with_what_was_sent():
    # GIVEN MLflow that stops answering after two batches
    answers = iter([None, None])

    def probe():
        if next(answers, "down") == "down":
            raise Unavailable("registry_unavailable", "MLflow is down")

    def put(batch):
        for sending in batch:
            sending.event_id = "id"

    # WHEN 30 events are sent at 10 a second
    clock = Clock()
    outcome = send_all(sendings(30), put=put, probe=probe, rate=10, clock=clock, sleep=clock.sleep)

    # THEN the run stops after 20, saying so and how to resume
    assert outcome.sent == 20
    assert outcome.stopped is not None
    assert "stopped after 20 of 30" in outcome.stopped
    assert "again" in outcome.stopped


def test_refused_entries_are_reported():
    def put(batch):
        batch[0].error = "InternalFailure: try again"

    outcome = send_all(sendings(1), put=put, probe=lambda: None, rate=5, sleep=lambda _: None)
    assert (outcome.sent, outcome.errors) == (0, ["s0: NOT sent: InternalFailure: try again"])


def test_progress_is_one_line_a_minute_off_a_terminal():
    # GIVEN a progress line on a stream that is no terminal
    clock, stream = Clock(), io.StringIO()
    progress = Progress(100, stream, clock=clock)

    # WHEN updates come every 10 s for two minutes, then the final one
    for step in range(1, 13):
        clock.now = step * 10.0
        progress.update(step * 5)
    progress.update(100, final=True)

    # THEN one line a minute, then the final line, each with rate and ETA
    lines = stream.getvalue().splitlines()
    assert lines == [
        "backfill: 30/100 sent, 0.5/s, ETA 2m20s",
        "backfill: 60/100 sent, 0.5/s, ETA 1m20s",
        "backfill: 100/100 sent, 0.8/s, ETA 0m00s",
    ]


def test_a_backfilled_version_held_from_aliases_moves_none(tmp_path):
    # GIVEN a passed version registered by a backfill without --promote
    world = AliasWorld(tmp_path)
    verdict = world.version("1", 0.9)
    world.registry.versions[-1] = replace(
        world.registry.versions[-1], tags={**world.registry.versions[-1].tags, BACKFILL_TAG: BACKFILL_HOLD_ALIASES}
    )

    # WHEN its verdict reaches the aliases route
    decisions = world.keeper.on_verdict(verdict)

    # THEN no alias moves, and each alias says why
    assert {d.action for d in decisions} == {"kept"}
    assert all("--promote" in d.reason for d in decisions)
    assert world.registry.alias_writes == []
    assert world.events.published == []


def test_a_backfilled_version_with_promote_moves_aliases_as_a_live_one(tmp_path):
    world = AliasWorld(tmp_path)
    verdict = world.version("1", 0.9)
    world.registry.versions[-1] = replace(
        world.registry.versions[-1], tags={**world.registry.versions[-1].tags, BACKFILL_TAG: BACKFILL_PROMOTE}
    )
    assert {d.action for d in world.keeper.on_verdict(verdict)} == {"moved"}


# --- the dead-letter count ---------------------------------------------------------------------------


class FakeSqs:
    """The SQS calls the count makes: a dead-letter queue to receive from (and make visible again), a queue depth."""

    def __init__(self, letters: list[dict], *, depths: list[int] | None = None) -> None:
        self.letters = letters
        self.depths = list(depths or [0])
        self.visible_again: list[str] = []

    def receive_message(self, **request):  # type: ignore[no-untyped-def]
        batch = [m for m in self.letters if not m.get("_received")][: request["MaxNumberOfMessages"]]
        for message in batch:
            message["_received"] = True
        return {"Messages": batch}

    def change_message_visibility_batch(self, QueueUrl, Entries):  # type: ignore[no-untyped-def]
        self.visible_again += [entry["ReceiptHandle"] for entry in Entries]

    def get_queue_attributes(self, QueueUrl, AttributeNames):  # type: ignore[no-untyped-def]
        depth = self.depths.pop(0) if len(self.depths) > 1 else self.depths[0]
        return {"Attributes": {"ApproximateNumberOfMessages": str(depth)}}


def letter(event_id: str, reason: str | None) -> dict:
    attributes = {"reason": {"StringValue": reason, "DataType": "String"}} if reason else {}
    body = json.dumps({"id": event_id, "detail-type": "Object Created", "detail": {"object": {"key": "k"}}})
    return {
        "MessageId": f"m-{event_id}",
        "ReceiptHandle": f"rh-{event_id}",
        "Body": body,
        "MessageAttributes": attributes,
    }


QUEUES = RouteQueues("register", "https://sqs/register", "https://sqs/register-dlq")


def test_the_count_is_this_runs_dead_letters_by_reason_and_leaves_them_in_the_queue():
    # GIVEN a register dead-letter queue with two letters of this run (one refused, one out of retries) and one of
    # an earlier run, and an empty register queue
    sqs = FakeSqs([letter("e1", "malformed_mlmodel"), letter("e2", None), letter("old", "malformed_mlmodel")])
    # WHEN the run counts what it sent (e1, e2, e3)
    counted = read_dead_lettered(sqs, QUEUES, {"e1", "e2", "e3"})
    # THEN two are counted, by reason, the earlier run's letter is not, and every letter is left where it was
    assert counted.reasons == {"malformed_mlmodel": 1, "none": 1}
    assert counted.line() == "dead-lettered 2 (malformed_mlmodel 1, none 1) (the register queue was empty when read)"
    assert sorted(sqs.visible_again) == ["rh-e1", "rh-e2", "rh-old"]


def test_records_still_in_the_register_queue_make_the_count_a_so_far():
    # GIVEN records still in the register queue, and no wait asked for
    sqs = FakeSqs([letter("e1", "malformed_mlmodel")], depths=[3])
    # WHEN counted
    counted = read_dead_lettered(sqs, QUEUES, {"e1"})
    # THEN the count says it is so far, how many are still waiting, and where to look later
    assert counted.line().startswith("dead-lettered 1 (malformed_mlmodel 1) so far, 3 record(s) still in the register")
    assert "python -m ops redrive register --dry-run" in counted.line()


def test_settle_waits_for_the_register_queue_to_empty_before_counting():
    # GIVEN a register queue that empties after two polls
    sqs = FakeSqs([], depths=[2, 1, 0])
    clock = Clock()
    # WHEN counted with --settle 60
    counted = read_dead_lettered(sqs, QUEUES, {"e1"}, settle_seconds=60, clock=clock, sleep=clock.sleep)
    # THEN it waited for the queue, and the count is for an empty queue
    assert (counted.waiting, clock.now > 0) == (0, True)
    assert counted.line() == "dead-lettered 0 (the register queue was empty when read)"


def test_a_target_without_the_register_dead_letter_queue_says_the_count_is_unknown():
    # GIVEN a target that names no register queues
    target = Target(event_bus="bus", tracking_uri=None, queues={})
    # WHEN the summary's dead-letter part is made; THEN it says it cannot know
    assert _dead_letter_line(target, {"e1"}, 0) == (
        "dead-lettered unknown (the target names no register dead-letter queue)"
    )


# --- MLflow workspaces ---------------------------------------------------------------------------------


class WorkspaceScopedRegistry(FakeRegistry):
    """The fake, answering `registered_identities` per workspace as a server with workspaces on does."""

    def __init__(self, identities: dict[str | None, set[str]]) -> None:
        super().__init__()
        self.identities = identities

    def registered_identities(self, bucket: str) -> set[str] | None:
        self._check()
        return set(self.identities.get(self.workspace, set()))


def test_identities_are_read_in_every_workspace_the_candidates_are_under():
    # GIVEN candidates outside any workspace and under workspace team-a, each registered in its own workspace
    keys = ["models/churn/1/MLmodel", f"mlflow/workspaces/team-a/7/{RUN}/artifacts/model/MLmodel"]
    selection = select([listed(key) for key in keys], artifact_root_prefix="mlflow")
    registry = WorkspaceScopedRegistry({None: {"s3://artifacts/a#v1"}, "team-a": {"s3://artifacts/b#v1"}})
    # WHEN the registered identities are read
    found = registered_identities(registry, BUCKET, selection.candidates)
    # THEN both workspaces were read, and both identities are known
    assert found == {"s3://artifacts/a#v1", "s3://artifacts/b#v1"}
    assert registry.calls_by_workspace == [None, "team-a"]
