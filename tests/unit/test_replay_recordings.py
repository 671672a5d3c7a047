"""Recorded events: reading them, and making them fit the sandbox (bucket, object version, bus)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.routing import Bus
from replay.recordings import (
    RecordingError,
    align_with_object,
    load_recording,
    object_key,
    put_events_entry,
    recorded_bucket,
    rewrite_bucket,
    target_bus,
)
from tests.conftest import load_event


def _write(tmp_path: Path, content: object, name: str = "recording.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_a_file_may_hold_one_event_a_list_json_lines_or_an_sqs_event(tmp_path: Path) -> None:
    # GIVEN the same event recorded four ways
    event = load_event("s3_object_created_aws.json")
    files = [
        _write(tmp_path, event, "one.json"),
        _write(tmp_path, [event, event], "list.json"),
        _write(tmp_path, f"{json.dumps(event)}\n{json.dumps(event)}\n", "lines.jsonl"),
        _write(tmp_path, {"Records": [{"body": json.dumps(event)}]}, "sqs.json"),
    ]

    # WHEN they are loaded
    loaded = [load_recording(path) for path in files]

    # THEN each yields the event, labelled by file and position
    assert [len(events) for events in loaded] == [1, 2, 2, 1]
    assert all(item.event == event for events in loaded for item in events)
    assert [item.label for item in loaded[1]] == [str(files[1]), f"{files[1]}#1"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"detail-type": "Object Created", "detail": {}}, r"not an EventBridge event \(missing source\)"),
        ([], "holds no events"),
        ("{nope", "neither JSON nor JSON lines"),
        ({"source": "x", "detail-type": "y", "detail": "z"}, "detail is not an object"),
        ({"Records": [{"body": 3}]}, "has no string body"),
    ],
)
def test_a_file_that_is_no_recording_is_refused(tmp_path: Path, content: object, problem: str) -> None:
    # GIVEN a file that does not hold events
    path = _write(tmp_path, content)

    # WHEN it is loaded
    # THEN the error names the file and the problem
    with pytest.raises(RecordingError, match=problem):
        load_recording(path)


def test_an_s3_event_is_rewritten_to_the_sandbox_bucket() -> None:
    # GIVEN an AWS S3 event from bucket "artifact-bucket"
    event = load_event("s3_object_created_aws.json")

    # WHEN it is rewritten for the sandbox's bucket
    rewritten = rewrite_bucket(event, "sandbox-bucket")

    # THEN the bucket name and ARN change, the key and the original do not
    assert rewritten["detail"]["bucket"]["name"] == "sandbox-bucket"
    assert rewritten["resources"] == ["arn:aws:s3:::sandbox-bucket"]
    assert rewritten["detail"]["object"]["key"] == event["detail"]["object"]["key"]
    assert event["detail"]["bucket"]["name"] == "artifact-bucket"


def test_a_project_event_is_rewritten_in_its_artifact_and_source_uri() -> None:
    # GIVEN a project event naming its artifact's bucket, and a look-alike bucket name
    event = {
        "source": "registry-autopilot",
        "detail-type": "Model Version Registered",
        "detail": {
            "source_uri": "s3://old-bucket/models/churn/1",
            "artifact": {"bucket": "old-bucket", "key": "models/churn/1/MLmodel"},
            "note": "old-bucket-2 stays",
            "other_uri": "s3://old-bucket-2/x",
        },
    }

    # WHEN it is rewritten
    detail = rewrite_bucket(event, "new-bucket")["detail"]

    # THEN only exact mentions of the bucket change
    assert recorded_bucket(event) == "old-bucket"
    assert detail["source_uri"] == "s3://new-bucket/models/churn/1"
    assert detail["artifact"]["bucket"] == "new-bucket"
    assert detail["note"] == "old-bucket-2 stays"
    assert detail["other_uri"] == "s3://old-bucket-2/x"
    assert object_key(event) == "models/churn/1/MLmodel"


@pytest.mark.parametrize(
    ("name", "etag_field"), [("s3_object_created_aws.json", "etag"), ("s3_object_created_moto.json", "eTag")]
)
def test_an_s3_event_is_aligned_with_the_seeded_object(name: str, etag_field: str) -> None:
    # GIVEN a recorded event (AWS's or moto's spelling) and the sandbox's copy of its object
    event = load_event(name)

    # WHEN it is aligned with that object
    aligned = align_with_object(event, version_id="v-sandbox", etag='"abc123"', size=42)

    # THEN it describes the sandbox's object, in the recording's own spelling
    assert aligned["detail"]["object"]["version-id"] == "v-sandbox"
    assert aligned["detail"]["object"][etag_field] == "abc123"
    assert aligned["detail"]["object"]["size"] == 42
    assert event["detail"]["object"]["size"] == 812


def test_events_go_to_the_bus_their_source_belongs_to() -> None:
    # GIVEN an S3 event and a project event
    # WHEN their buses are chosen
    # THEN AWS sources (and S3 events re-sent under the replay source) go to the default bus, others to the project bus
    assert target_bus(load_event("s3_object_created_aws.json")) is Bus.DEFAULT
    assert target_bus({"source": "registry-autopilot.replay"}) is Bus.DEFAULT
    assert target_bus({"source": "registry-autopilot"}) is Bus.PROJECT


def test_put_events_entry_keeps_content_and_time() -> None:
    # GIVEN a recorded S3 event
    event = load_event("s3_object_created_aws.json")

    # WHEN it becomes a PutEvents entry
    entry = put_events_entry(event, event_bus_name="default")

    # THEN source, type, detail, resources and time are kept (EventBridge assigns a new id)
    assert entry["Source"] == "aws.s3"
    assert entry["DetailType"] == "Object Created"
    assert json.loads(entry["Detail"]) == event["detail"]
    assert entry["Resources"] == ["arn:aws:s3:::artifact-bucket"]
    assert entry["Time"] == datetime(2026, 11, 20, 10, 15, 30, tzinfo=UTC)
    assert entry["EventBusName"] == "default"
