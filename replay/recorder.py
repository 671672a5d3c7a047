"""Downloading what a deployed stack's recorder kept (`python -m replay record --stack NAME --since 1h OUT_DIR`).

The recorder (`stacks/constructs/recorder.py`) writes every project event and the bucket's S3 events into one log
group, one event's JSON per log event. `download` pages through them (FilterLogEvents) and writes one file per
event, named so that a directory listing is in time order (`20261120T101530Z-object-created-2d4eba74.json`);
`replay local OUT_DIR` replays them. Downloading again overwrites the same files with the same content.

With `--seed DIR`, the S3 objects the recorded `Object Created` events name are downloaded too, at the exact
version each event names, to `DIR/<key>`: the seed `replay local --seed DIR` needs for the same outcome on a
laptop. Keys are checked like the register function checks them (no `..`, no control characters), so a hostile
key cannot write outside DIR.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.domain.errors import Rejected
from functions.domain.layouts import check_key
from replay.aws_stack import AwsProblem, DeployedStack, calling
from replay.recordings import RecordingError, as_event, is_s3_event
from stacks import outputs

Progress = Callable[[str], None]


@dataclass
class Download:
    """What `download` wrote, and what it left out (with the reason)."""

    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    objects: list[Path] = field(default_factory=list)
    objects_skipped: list[str] = field(default_factory=list)


def recorded_log_events(
    stack: DeployedStack,
    *,
    start: datetime,
    end: datetime,
    page_size: int | None = None,
    progress: Progress = lambda message: None,
) -> Iterator[Mapping[str, Any]]:
    """Every log event of the recorder's log group between `start` and `end`, page by page."""
    if not stack.outputs.get(outputs.RECORDER_LOG_GROUP_NAME):
        raise AwsProblem(
            f"stack {stack.name!r} in {stack.region} has no output {outputs.RECORDER_LOG_GROUP_NAME!r}: its recorder is "
            "off (the default; it takes one of the account's 10 CloudWatch Logs resource policies) or it was deployed "
            "by an older version; deploy this version with -c recorder=true (make deploy) and try again"
        )
    log_group = stack.output(outputs.RECORDER_LOG_GROUP_NAME)
    arguments: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": _millis(start),
        "endTime": _millis(end),
    }
    if page_size:
        arguments["PaginationConfig"] = {"PageSize": page_size}
    seen = 0
    with calling(f"read the recorder's log group {log_group!r}"):
        for number, page in enumerate(stack.client("logs").get_paginator("filter_log_events").paginate(**arguments), 1):
            events = page.get("events", [])
            seen += len(events)
            progress(f"page {number}: {seen} recorded events so far")
            yield from events


def download(
    stack: DeployedStack,
    out_dir: Path,
    *,
    start: datetime,
    end: datetime,
    seed_dir: Path | None = None,
    page_size: int | None = None,
    progress: Progress = lambda message: None,
) -> Download:
    """Write the recorded events of the window to `out_dir` (and their objects to `seed_dir`)."""
    result = Download()
    out_dir.mkdir(parents=True, exist_ok=True)
    objects: dict[tuple[str, str, str | None], None] = {}
    for log_event in recorded_log_events(stack, start=start, end=end, page_size=page_size, progress=progress):
        where = f"log stream {log_event.get('logStreamName')}, event {log_event.get('eventId')}"
        try:
            event = as_event(json.loads(log_event.get("message", "")), where)
        except (ValueError, RecordingError) as error:
            result.skipped.append(f"{where}: not an EventBridge event ({error})")
            continue
        path = out_dir / file_name(event, log_event)
        path.write_text(json.dumps(event, indent=2, sort_keys=True) + "\n")
        result.files.append(path)
        if seed_dir is not None and is_s3_event(event) and event.get("detail-type") == "Object Created":
            obj = (event.get("detail") or {}).get("object") or {}
            bucket = ((event.get("detail") or {}).get("bucket") or {}).get("name")
            version = obj.get("version-id")
            objects[(str(bucket), str(obj.get("key", "")), None if version in (None, "", "null") else str(version))] = (
                None
            )
    if seed_dir is not None:
        _download_objects(stack, list(objects), seed_dir, result, progress)
    return result


def file_name(event: Mapping[str, Any], log_event: Mapping[str, Any]) -> str:
    """`<UTC time>-<detail type>-<id>.json`, from the event (or the log event when the event lacks them)."""
    moment = _event_time(event) or datetime.fromtimestamp(int(log_event.get("timestamp", 0)) / 1000, tz=UTC)
    detail_type = _slug(str(event.get("detail-type", "event"))) or "event"
    identifier = _slug(str(event.get("id") or log_event.get("eventId") or ""))[:8] or "no-id"
    return f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{detail_type}-{identifier}.json"


def _download_objects(
    stack: DeployedStack,
    objects: list[tuple[str, str, str | None]],
    seed_dir: Path,
    result: Download,
    progress: Progress,
) -> None:
    bucket_name = stack.output(outputs.BUCKET_NAME)
    root = seed_dir.resolve()
    s3 = stack.client("s3")
    for number, (bucket, key, version) in enumerate(objects, 1):
        label = f"s3://{bucket}/{key}" + (f"?versionId={version}" if version else "")
        if bucket != bucket_name:
            result.objects_skipped.append(f"{label}: not the stack's bucket {bucket_name}")
            continue
        try:
            check_key(key)
        except Rejected as refused:
            result.objects_skipped.append(f"{label}: {refused.message}")
            continue
        target = (root / key).resolve()
        if not target.is_relative_to(root):  # check_key refuses '..' already; this keeps the promise regardless
            result.objects_skipped.append(f"{label}: would be written outside {seed_dir}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        extra = {"VersionId": version} if version else None
        try:
            with calling(f"download {label}"):
                s3.download_file(bucket, key, str(target), ExtraArgs=extra)
        except AwsProblem as problem:
            result.objects_skipped.append(f"{label}: {problem}")
            continue
        result.objects.append(target)
        progress(f"object {number} of {len(objects)}: {key} ({target.stat().st_size} bytes)")


def _event_time(event: Mapping[str, Any]) -> datetime | None:
    value = event.get("time")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
