"""S3 events as AWS shapes them (`tests/events/s3_shapes/`), through the sandbox: real MLflow, moto, the real rule.

For each supported shape a real model is written under the key the event names, the way the event's `reason` says
(PutObject, a copy from another prefix, a multipart upload), with the bucket's own notifications paused so that only
the shape under test announces it. The event (bucket, size, ETag and version id aligned with the object, as `replay
send` aligns them) is then put on the default bus twice, and delivered once more as the file has it, straight to the
register queue (top-level fields included, which PutEvents cannot carry): one version, one announcement, nothing
dead-lettered. A folder marker is written for real, put on the bus and sent to the queue: nothing is registered or
dead-lettered, and the one delivery that reaches the function is skipped with its reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from functions.domain.tags import origin_tag
from functions.routing import MLMODEL_FILE, REGISTER
from replay.recordings import align_with_object, put_events_entry, rewrite_bucket
from sandbox import Sandbox
from tests.conftest import EVENTS

pytestmark = pytest.mark.slow

SHAPES = EVENTS / "s3_shapes"
REGISTERED = "Model Version Registered"


@contextmanager
def notifications_paused(sandbox: Sandbox) -> Iterator[None]:
    """Only the event under test announces the object (as in `reliability/hostile.py`)."""
    sandbox._set_bucket_notifications(enabled=False)
    try:
        yield
    finally:
        sandbox._set_bucket_notifications(enabled=True)


def write_model(sandbox: Sandbox, model_dir: Path, prefix: str, reason: str) -> None:
    """The model under `prefix`, its MLmodel's latest version written by the S3 API the event's reason names."""
    sandbox.upload_dir(model_dir, prefix, notify=False)  # PutObject, MLmodel last
    s3, key, mlmodel = sandbox.client("s3"), f"{prefix}{MLMODEL_FILE}", (model_dir / MLMODEL_FILE).read_bytes()
    with notifications_paused(sandbox):
        if reason == "CopyObject":  # promoted from a staging prefix, or copied in from another bucket
            staging = f"staging/{prefix}{MLMODEL_FILE}"
            sandbox.put_object(staging, mlmodel)
            s3.copy_object(Bucket=sandbox.bucket, Key=key, CopySource={"Bucket": sandbox.bucket, "Key": staging})
        elif reason == "CompleteMultipartUpload":  # how big files arrive; a single (last, so small) part is allowed
            upload = s3.create_multipart_upload(Bucket=sandbox.bucket, Key=key)
            part = s3.upload_part(
                Bucket=sandbox.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=mlmodel
            )
            s3.complete_multipart_upload(
                Bucket=sandbox.bucket,
                Key=key,
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            )


def shape_for(sandbox: Sandbox, name: str, key: str, *, aligned: bool = True) -> dict:
    """The file's event, for the sandbox's bucket and `key`, describing the object the sandbox holds."""
    event = rewrite_bucket(json.loads((SHAPES / name).read_text()), sandbox.bucket)
    event["detail"]["object"]["key"] = key
    if not aligned:
        return event
    head = sandbox.client("s3").head_object(Bucket=sandbox.bucket, Key=key)
    unversioned = "version-id" not in event["detail"]["object"]
    return align_with_object(
        event,
        version_id=None if unversioned else head["VersionId"],
        etag=head["ETag"],
        size=head["ContentLength"],
    )


def deliver(sandbox: Sandbox, event: dict, *, on_bus: int, raw: int) -> None:
    """Put `event` on the default bus `on_bus` times, and send it as it is to the register queue `raw` times."""
    events = sandbox.client("events")
    for _ in range(on_bus):
        answer = events.put_events(Entries=[put_events_entry(event, event_bus_name="default")])
        assert answer["FailedEntryCount"] == 0, answer
    for _ in range(raw):
        sandbox.client("sqs").send_message(
            QueueUrl=sandbox.wiring[REGISTER.name].queue_url, MessageBody=json.dumps(event)
        )


def register_log(sandbox: Sandbox, key: str) -> list[dict]:
    return [line for line in sandbox.worker_log_lines([REGISTER.name]) if line.get("key") == key]


@pytest.mark.parametrize(
    "name",
    [
        "put_object_unversioned.json",
        "post_object_versioned.json",
        "copy_object_versioned.json",
        "complete_multipart_upload_versioned.json",
        "unknown_fields.json",
    ],
)
def test_each_supported_shape_registers_one_version_however_often_it_is_delivered(
    name: str, sandbox: Sandbox, model_name: str, sklearn_model_dir: Path, mlflow_client, wait_quiet
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a real model written under the event's key the way the event's reason says, announced by nothing yet
    prefix = f"models/{model_name}/1/"
    key = f"{prefix}{MLMODEL_FILE}"
    reason = json.loads((SHAPES / name).read_text())["detail"]["reason"]
    write_model(sandbox, sklearn_model_dir, prefix, reason)
    event = shape_for(sandbox, name, key)
    if reason == "CompleteMultipartUpload":
        assert event["detail"]["object"]["etag"].endswith("-1")  # S3's multipart ETag: the object really is one

    # WHEN the event is put on the default bus twice, and delivered once more as the file has it
    deliver(sandbox, event, on_bus=2, raw=1)
    wait_quiet(timeout=90)

    # THEN there is exactly one version, from the model's folder, tagged with the event's object
    [version] = mlflow_client.search_model_versions(f"name='{model_name}'")
    assert version.source == f"s3://{sandbox.bucket}/{prefix.rstrip('/')}"
    assert version.tags[origin_tag("etag")] == event["detail"]["object"]["etag"]
    assert version.tags.get(origin_tag("version_id")) == event["detail"]["object"].get("version-id")
    # AND one announcement, nothing dead-lettered, and the other two deliveries recognised as duplicates
    [announced] = sandbox.wait_for_events(REGISTERED, model_name=model_name, timeout=30)
    assert announced["detail"]["artifact"]["key"] == key
    assert [letter for letter in sandbox.dlq_messages(REGISTER.name) if letter.key == key] == []
    messages = [line.get("message") for line in register_log(sandbox, key)]
    assert messages.count("model version registered") == 1
    assert messages.count("duplicate delivery: already handled") == 2


def test_a_folder_marker_registers_nothing_and_is_not_dead_lettered(
    sandbox: Sandbox, model_name: str, sklearn_model_dir: Path, mlflow_client, wait_quiet
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a complete model folder, seeded without events
    prefix = f"models/{model_name}/1/"
    sandbox.upload_dir(sklearn_model_dir, prefix, notify=False)

    # WHEN a folder marker is created for it for real (the bucket's own event goes out), its event is put on the
    # default bus, and the same event is sent straight to the register queue (as a hand-sent or misrouted one would be)
    sandbox.put_object(prefix, b"")
    event = shape_for(sandbox, "folder_marker.json", prefix)
    assert event["detail"]["object"]["size"] == 0
    deliver(sandbox, event, on_bus=1, raw=1)
    wait_quiet(timeout=60)

    # THEN nothing is registered, nothing dead-lettered, and nothing re-enqueued
    assert mlflow_client.search_model_versions(f"name='{model_name}'") == []
    assert [letter for letter in sandbox.dlq_messages(REGISTER.name) if (letter.key or "").startswith(prefix)] == []
    # AND only the delivery that bypassed the rule reached the function: skipped, with its reason
    lines = register_log(sandbox, prefix)
    assert [(line.get("message"), line.get("reason")) for line in lines if line.get("level") != "DEBUG"] == [
        ("skipped", "folder_marker")
    ]
