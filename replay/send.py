"""Putting recorded events on a deployed stack's buses (`python -m replay send --stack NAME FILE...`).

- S3 events go to the default bus, where the register rule listens. EventBridge's PutEvents refuses `aws.*`
  sources, so they are sent under `functions.routing.REPLAY_SOURCE`, which the rule accepts too. Other `aws.*`
  events are refused: nothing of this project listens for them.
- Project events go to the project bus, as they are.
- Events recorded in another bucket (a sandbox, another stack) are rewritten to the stack's bucket, and their
  object's ETag, size and version id are read from that bucket (HeadObject), as `replay local` does with a seed.
  Events of the stack's own bucket are sent as recorded, so they name the exact object version they named.

PutEvents assigns new event ids; the register function identifies an upload by bucket, key and version, so a sent
event of an upload that was registered already is a duplicate delivery, handled as one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from functions.routing import REPLAY_SOURCE, S3_SOURCE, Bus
from replay.aws_stack import AwsProblem, DeployedStack, calling, error_code
from replay.recordings import (
    RecordedEvent,
    align_with_object,
    is_s3_event,
    object_key,
    put_events_entry,
    recorded_bucket,
    rewrite_bucket,
    target_bus,
)
from stacks import outputs

PUT_EVENTS_BATCH = 10


@dataclass
class Sending:
    """One recorded event, ready to be put on a bus (or refused, with the reason)."""

    label: str
    entry: dict | None
    notes: list[str] = field(default_factory=list)
    event_id: str | None = None
    error: str | None = None

    @property
    def sent(self) -> bool:
        return self.event_id is not None


def prepare(
    item: RecordedEvent,
    *,
    bucket: str,
    project_bus: str,
    keep_buckets: Iterable[str] = (),
    head: Callable[[str], dict | None] | None = None,
) -> Sending:
    """The PutEvents entry for one recorded event, or a refusal. `head(key)` reads an object of `bucket`."""
    event = dict(item.event)
    source = str(event.get("source", ""))
    if source.startswith("aws.") and not is_s3_event(event):
        return Sending(item.label, None, error=f"{source} events cannot be sent: only S3 and project events can")
    notes: list[str] = []
    recorded = recorded_bucket(event)
    if recorded and recorded != bucket and recorded not in set(keep_buckets):
        event = rewrite_bucket(event, bucket)
        notes.append(f"bucket {recorded} -> {bucket}")
        key = object_key(event)
        if is_s3_event(event) and key and head is not None:
            found = head(key)
            if found is None:
                notes.append(f"warning: s3://{bucket}/{key} does not exist; the register function will skip it")
            else:
                event = align_with_object(
                    event, version_id=found.get("VersionId"), etag=found["ETag"], size=int(found["ContentLength"])
                )
    if is_s3_event(event):
        if source != REPLAY_SOURCE:
            notes.append(f"source {source} -> {REPLAY_SOURCE}")
        event["source"] = REPLAY_SOURCE
    bus_name = "default" if target_bus(event) is Bus.DEFAULT else project_bus
    return Sending(item.label, put_events_entry(event, event_bus_name=bus_name), notes)


def send(
    stack: DeployedStack,
    recorded: Sequence[RecordedEvent],
    *,
    keep_buckets: Iterable[str] = (),
    progress: Callable[[str], None] = lambda message: None,
) -> list[Sending]:
    """Prepare every event, then put them in batches of 10; each `Sending` says what became of its event."""
    bucket, project_bus = stack.output(outputs.BUCKET_NAME), stack.output(outputs.EVENT_BUS_NAME)
    sendings = [
        prepare(item, bucket=bucket, project_bus=project_bus, keep_buckets=keep_buckets, head=_header(stack, bucket))
        for item in recorded
    ]
    ready = [sending for sending in sendings if sending.entry is not None]
    events = stack.client("events")
    for start in range(0, len(ready), PUT_EVENTS_BATCH):
        put_batch(
            events, ready[start : start + PUT_EVENTS_BATCH], doing=f"put events on the buses of stack {stack.name!r}"
        )
        progress(f"put {min(start + PUT_EVENTS_BATCH, len(ready))} of {len(ready)} events")
    return sendings


def put_batch(events: Any, batch: Sequence[Sending], *, doing: str) -> None:
    """One PutEvents call for up to 10 prepared events; each `Sending` gets its event id or the entry's error."""
    with calling(doing):
        response = events.put_events(Entries=[sending.entry for sending in batch])
    for sending, result in zip(batch, response["Entries"], strict=True):
        if result.get("EventId"):
            sending.event_id = result["EventId"]
        else:
            sending.error = f"{result.get('ErrorCode', 'Error')}: {result.get('ErrorMessage', 'refused')}"


def object_created(
    bucket: str, key: str, *, etag: str, size: int, version_id: str | None, time: datetime, **detail: Any
) -> RecordedEvent:
    """The `Object Created` event S3 would have put on the default bus for this object version (as a recording:
    `prepare` sends it under the replay source). `detail` adds fields to the event's detail."""
    event = {
        "version": "0",
        "source": S3_SOURCE,
        "detail-type": "Object Created",
        "time": time.isoformat().replace("+00:00", "Z"),
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": size,
                "etag": etag.strip('"'),
                **({"version-id": version_id} if version_id else {}),
            },
            "reason": "PutObject",
            **detail,
        },
    }
    return RecordedEvent(file=f"s3://{bucket}/{key}", index=0, event=event)


def _header(stack: DeployedStack, bucket: str) -> Callable[[str], dict | None]:
    def head(key: str) -> dict | None:
        try:
            with calling(f"read s3://{bucket}/{key}"):
                return stack.client("s3").head_object(Bucket=bucket, Key=key)
        except AwsProblem as problem:
            if error_code(problem) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    return head


def describe(sending: Sending) -> str:
    """One line per event for the terminal."""
    notes = f" ({'; '.join(sending.notes)})" if sending.notes else ""
    if sending.sent:
        entry: dict[str, Any] = sending.entry or {}
        return f"{sending.label}: sent as {sending.event_id} to bus {entry.get('EventBusName')}{notes}"
    return f"{sending.label}: NOT sent: {sending.error}{notes}"
