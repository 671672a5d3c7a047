"""Recorded events, made ready to inject into a sandbox.

A recording is an EventBridge event as a rule target receives it (`{"source", "detail-type",
"detail", ...}`), a JSON list of them, JSON lines, or a Lambda SQS event whose record bodies are such
events. Pure functions, no I/O beyond reading the file: unit-tested.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from functions.routing import REPLAY_SOURCE, S3_EVENT_SOURCES, Bus


class RecordingError(ValueError):
    """A recording file cannot be read as events; the message names the file and the problem."""


@dataclass(frozen=True)
class RecordedEvent:
    file: str
    index: int
    """Position in the file (0 for a file holding one event)."""
    event: dict

    @property
    def label(self) -> str:
        return self.file if self.index == 0 else f"{self.file}#{self.index}"


def load_recording(path: Path) -> list[RecordedEvent]:
    """The events in one recording file, in file order."""
    try:
        text = path.read_text()
    except OSError as error:
        raise RecordingError(f"{path}: cannot read it: {error.strerror}") from None
    try:
        data: Any = json.loads(text)
    except ValueError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as error:
            raise RecordingError(f"{path}: neither JSON nor JSON lines: {error}") from None
    events = _events_in(data, path)
    if not events:
        raise RecordingError(f"{path}: holds no events")
    return [RecordedEvent(file=str(path), index=index, event=event) for index, event in enumerate(events)]


def _events_in(data: Any, path: Path) -> list[dict]:
    if isinstance(data, Mapping) and isinstance(data.get("Records"), list):
        return [_event(_body(record, path), path) for record in data["Records"]]
    if isinstance(data, list):
        return [event for item in data for event in _events_in(item, path)]
    return [_event(data, path)]


def _body(record: Any, path: Path) -> Any:
    body = record.get("body") if isinstance(record, Mapping) else None
    if not isinstance(body, str):
        raise RecordingError(f"{path}: an SQS record has no string body")
    try:
        return json.loads(body)
    except ValueError:
        raise RecordingError(f"{path}: an SQS record's body is not JSON") from None


def as_event(data: Any, where: str) -> dict:
    """`data` if it is an EventBridge event (source, detail-type, detail); `RecordingError` naming `where` if not."""
    return _event(data, where)


def _event(data: Any, path: Path | str) -> dict:
    if not isinstance(data, Mapping):
        raise RecordingError(f"{path}: expected an EventBridge event object, found {type(data).__name__}")
    missing = [name for name in ("source", "detail-type", "detail") if name not in data]
    if missing:
        raise RecordingError(f"{path}: not an EventBridge event (missing {', '.join(missing)})")
    if not isinstance(data["detail"], Mapping):
        raise RecordingError(f"{path}: the event's detail is not an object")
    return dict(data)


def recorded_bucket(event: Mapping[str, Any]) -> str | None:
    """The artifact bucket a recorded event refers to: an S3 event's bucket, or a project event's artifact."""
    detail = event.get("detail") or {}
    bucket, artifact, source_uri = detail.get("bucket"), detail.get("artifact"), detail.get("source_uri")
    if isinstance(bucket, Mapping) and isinstance(bucket.get("name"), str) and bucket["name"]:
        return bucket["name"]
    if isinstance(artifact, Mapping) and isinstance(artifact.get("bucket"), str) and artifact["bucket"]:
        return artifact["bucket"]
    if isinstance(source_uri, str) and source_uri.startswith("s3://"):
        return source_uri[len("s3://") :].split("/", 1)[0] or None
    return None


def rewrite_bucket(event: Mapping[str, Any], bucket: str) -> dict:
    """A copy of `event` with every mention of its recorded bucket replaced by `bucket`.

    Mentions are the bucket name itself, `s3://<bucket>/...` URIs and `arn:aws:s3:::<bucket>...` ARNs,
    anywhere in the event (detail, resources, source URIs of project events).
    """
    old = recorded_bucket(event)
    rewritten = copy.deepcopy(dict(event))
    if not old or old == bucket:
        return rewritten
    return _replace_strings(rewritten, old, bucket)


def _replace_strings(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        if value == old:
            return new
        for prefix in ("s3://", "arn:aws:s3:::"):
            if value == f"{prefix}{old}" or value.startswith(f"{prefix}{old}/"):
                return f"{prefix}{new}{value[len(prefix) + len(old) :]}"
        return value
    if isinstance(value, list):
        return [_replace_strings(item, old, new) for item in value]
    if isinstance(value, dict):
        return {key: _replace_strings(item, old, new) for key, item in value.items()}
    return value


def object_key(event: Mapping[str, Any]) -> str | None:
    """The S3 object key of an S3 event, or the artifact key of a project event."""
    detail = event.get("detail") or {}
    for container, field in ((detail.get("object"), "key"), (detail.get("artifact"), "key")):
        if isinstance(container, Mapping) and isinstance(container.get(field), str):
            return container[field]
    return None


def align_with_object(event: Mapping[str, Any], *, version_id: str | None, etag: str, size: int) -> dict:
    """A copy of an S3 event that describes the object as the sandbox holds it.

    The recorded version id belongs to the recorded bucket; the seeded copy has its own. The recorded
    etag and size are kept as the recording spelled them (`etag` or moto's `eTag`), with the sandbox's values.
    """
    aligned = copy.deepcopy(dict(event))
    obj = aligned.get("detail", {}).get("object")
    if not isinstance(obj, dict):
        return aligned
    if "version-id" in obj or version_id not in (None, "null"):
        obj["version-id"] = version_id or "null"
    etag_field = "eTag" if "eTag" in obj and "etag" not in obj else "etag"
    obj[etag_field] = etag.strip('"')
    obj["size"] = size
    return aligned


def target_bus(event: Mapping[str, Any]) -> Bus:
    """AWS services put their events on the default bus, and S3 events re-sent under the replay source go there
    too (the register rule listens there); everything else is the project's."""
    source = str(event.get("source", ""))
    return Bus.DEFAULT if source.startswith("aws.") or source == REPLAY_SOURCE else Bus.PROJECT


def is_s3_event(event: Mapping[str, Any]) -> bool:
    """An S3 event of a bucket, as S3 sent it or as `replay send` re-sent it."""
    return event.get("source") in S3_EVENT_SOURCES


def put_events_entry(event: Mapping[str, Any], *, event_bus_name: str) -> dict:
    """The PutEvents entry that makes EventBridge deliver `event` again (a new id, same content)."""
    entry: dict[str, Any] = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"], sort_keys=True),
        "EventBusName": event_bus_name,
    }
    resources = event.get("resources")
    if isinstance(resources, list) and resources:
        entry["Resources"] = [str(item) for item in resources]
    time = _parse_time(event.get("time"))
    if time is not None:
        entry["Time"] = time
    return entry


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
