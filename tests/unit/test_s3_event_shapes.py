"""S3 `Object Created` events as AWS shapes them, from references written by others (`tests/events/s3_shapes/`).

Table-driven over the folder: for each file, whether the register rule takes it (moto's implementation of
EventBridge's matching) and what the register handler does with it. Every supported shape registers exactly once,
however often it is delivered; unknown fields are ignored; a folder marker is skipped with its reason, never
dead-lettered.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import pytest

from functions.domain.errors import Rejected
from functions.domain.registration import UploadedObject
from functions.domain.tags import origin_tag
from functions.handlers.register import Dependencies, lambda_handler, registration_work
from functions.models.s3 import S3ObjectEvent
from functions.routing import REGISTER
from replay.recordings import rewrite_bucket
from tests.builders import BUCKET, FakeContext, emitted_metrics, sqs_event
from tests.builders import RegistrationWorld as World
from tests.conftest import EVENTS
from tests.fakes import FakeQueue, OncePerIdentity

SHAPES = EVENTS / "s3_shapes"
MODEL_DIR = "models/churn/2026-11-20"


@dataclass(frozen=True)
class Expected:
    rule_matches: bool
    outcome: str
    """"registered", or "skipped <reason>"."""


EXPECTED = {
    # Powertools' events, verbatim (an image upload, two deletions, a restore).
    "s3EventBridgeNotificationObjectCreatedEvent.json": Expected(False, "skipped not_a_model_location"),
    "s3EventBridgeNotificationObjectDeletedEvent.json": Expected(False, "skipped not_object_created"),
    "s3EventBridgeNotificationObjectExpiredEvent.json": Expected(False, "skipped not_object_created"),
    "s3EventBridgeNotificationObjectRestoreCompletedEvent.json": Expected(False, "skipped not_object_created"),
    # Derived from Powertools' Object Created event: the key points at a model.
    "put_object_unversioned.json": Expected(True, "registered"),
    "copy_object_versioned.json": Expected(True, "registered"),
    "post_object_versioned.json": Expected(True, "registered"),
    "complete_multipart_upload_versioned.json": Expected(True, "registered"),
    "unknown_fields.json": Expected(True, "registered"),
    "folder_marker.json": Expected(False, "skipped folder_marker"),
}
REGISTERED = [name for name, expected in EXPECTED.items() if expected.outcome == "registered"]
SKIPPED = [name for name, expected in EXPECTED.items() if expected.outcome != "registered"]


def shape(name: str) -> dict:
    """The file's event, with its bucket (`example-bucket`) replaced by the one the tests' registrar owns."""
    return rewrite_bucket(json.loads((SHAPES / name).read_text()), BUCKET)


@pytest.fixture
def world() -> World:
    world = World()
    world.upload_model(MODEL_DIR)
    return world


@pytest.fixture
def deps(world: World) -> Dependencies:
    return Dependencies(register_once=OncePerIdentity(registration_work(world.registrar)), queue=FakeQueue())


def test_every_file_has_an_expectation_and_a_line_in_the_readme():
    # GIVEN the folder's event files and its README
    files = {path.name for path in SHAPES.glob("*.json")}
    readme = (SHAPES / "README.md").read_text()

    # THEN each file has an expected outcome here and a row in the README, and nothing is expected of a missing file
    assert files == set(EXPECTED)
    assert files == set(re.findall(r"^\| `([^`]+\.json)` \|", readme, flags=re.MULTILINE))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_shape_parses_and_the_register_rule_takes_only_model_uploads(name: str):
    # GIVEN the event, and the register rule evaluated by moto's implementation of EventBridge's matching
    from moto.events.models import EventPattern

    event = shape(name)
    rule = EventPattern.load(json.dumps(REGISTER.event_pattern(bucket_name=BUCKET)))

    # WHEN the event is parsed the way the register handler parses it
    parsed = S3ObjectEvent.model_validate_json(json.dumps(event))

    # THEN it parses (unknown fields and all), with the object's fields as the event spells them
    assert parsed.detail.object.key == event["detail"]["object"]["key"]
    assert parsed.detail.object.version_id == event["detail"]["object"].get("version-id")
    assert parsed.detail.object.etag == event["detail"]["object"].get("etag", "")
    assert parsed.detail.reason == event["detail"].get("reason")
    # AND the rule takes the MLmodel uploads, whatever their reason, and nothing else
    assert rule.matches_event(event) is EXPECTED[name].rule_matches


def test_the_registered_shapes_cover_the_create_reasons_and_an_unversioned_write():
    # GIVEN the shapes that register
    details = [shape(name)["detail"] for name in REGISTERED]

    # THEN they include every reason S3 documents for Object Created, and a write without a version id
    assert {detail["reason"] for detail in details} == {
        "PutObject",
        "POST Object",
        "CopyObject",
        "CompleteMultipartUpload",
    }
    assert any("version-id" not in detail["object"] for detail in details)


@pytest.mark.parametrize("name", REGISTERED)
def test_each_supported_shape_registers_exactly_once_however_often_it_is_delivered(
    name: str, world: World, deps: Dependencies, capsys
):
    # GIVEN a complete model under the event's key, and the event delivered twice in one batch, then once more
    event = shape(name)
    body = json.dumps(event)

    # WHEN the handler gets both batches
    first = lambda_handler(sqs_event(body, body), FakeContext(), dependencies=deps)
    second = lambda_handler(sqs_event(body), FakeContext(), dependencies=deps)

    # THEN nothing failed or was dead-lettered, and there is one version, tagged with the event's object
    assert first == second == {"batchItemFailures": []}
    assert deps.queue.dead_letters == []
    [version] = world.registry.versions
    assert version.source == f"s3://{BUCKET}/{MODEL_DIR}"
    assert version.tags[origin_tag("etag")] == event["detail"]["object"]["etag"]
    assert version.tags.get(origin_tag("version_id")) == event["detail"]["object"].get("version-id")
    # AND one announcement, one registration counted and two duplicates suppressed
    assert len(world.events.published) == 1
    metrics = emitted_metrics(capsys.readouterr().out)
    assert len(metrics["VersionRegistered"]) == 1
    assert len(metrics["DuplicateSuppressed"]) == 2


@pytest.mark.parametrize("name", SKIPPED)
def test_each_other_shape_is_skipped_with_its_reason_not_dead_lettered(
    name: str, world: World, deps: Dependencies, capsys, caplog
):
    # GIVEN an event the pipeline does not register (delivered to the function, as a replay or a raw message could)
    reason = EXPECTED[name].outcome.removeprefix("skipped ")

    # WHEN the handler gets it
    result = lambda_handler(sqs_event(json.dumps(shape(name))), FakeContext(), dependencies=deps)

    # THEN it is acknowledged, nothing is registered or dead-lettered, and the skip is logged and counted with its reason
    assert result == {"batchItemFailures": []}
    assert deps.queue.dead_letters == []
    assert deps.queue.requeued == []
    assert world.registry.versions == []
    assert emitted_metrics(capsys.readouterr().out)["RegistrationSkipped"] == [{"reason": reason}]
    [logged] = [r for r in caplog.records if r.getMessage().startswith("skipped")]
    if reason == "not_object_created":
        assert logged.detail_type == shape(name)["detail-type"]
    else:
        assert logged.reason == reason


def test_a_folder_marker_with_a_hostile_key_is_still_refused():
    # GIVEN folder markers whose keys climb out of the bucket's layout
    world = World()
    for key in ("models/../../etc/", "/", "models//"):
        # WHEN they are registered
        # THEN they are refused as invalid keys, as the same key without the slash would be
        with pytest.raises(Rejected) as refused:
            world.registrar.register(UploadedObject(bucket=BUCKET, key=key, etag="d41d8cd98f00b204e9800998ecf8427e"))
        assert refused.value.reason == "invalid_key"


def test_a_folder_marker_is_skipped_even_for_a_model_folder_named_like_the_mlmodel_file():
    # GIVEN a folder marker `…/MLmodel/` (a folder, not the file), over a complete model
    world = World()
    world.upload_model(MODEL_DIR)

    # WHEN it is registered
    outcome = world.registrar.register(UploadedObject(bucket=BUCKET, key=f"{MODEL_DIR}/MLmodel/", size=0))

    # THEN it is skipped as a folder marker, and nothing is registered
    assert (outcome.status, outcome.reason) == ("skipped", "folder_marker")
    assert world.registry.versions == []


@pytest.mark.parametrize(
    ("name", "sha256"),
    [
        (
            "s3EventBridgeNotificationObjectCreatedEvent.json",
            "56ec7360ad43f139c1e7225cad8b43c40d9599ac08812e66c6a6c48b308b0e33",
        ),
        (
            "s3EventBridgeNotificationObjectDeletedEvent.json",
            "e0e70d89d6129531fb1dbee875f51f06b1783ca7828d4bf2b699e86d036d34e4",
        ),
        (
            "s3EventBridgeNotificationObjectExpiredEvent.json",
            "59df1c67d472b3a9bf8d896b65687fa9a4f51557a6bd040a269466e7141417ef",
        ),
        (
            "s3EventBridgeNotificationObjectRestoreCompletedEvent.json",
            "55c02091e1a6b8cdc0e23caa510d8c3892e25c6c4cb6ac4183e2d811904b3143",
        ),
    ],
)
def test_the_referenced_files_are_kept_byte_for_byte(name: str, sha256: str):
    # GIVEN a file copied from aws-powertools/powertools-lambda-python (tests/events/, commit fa1c29f2)
    # THEN it is the published file, unchanged (the README says so; an edit belongs in a derived file)
    assert hashlib.sha256((SHAPES / name).read_bytes()).hexdigest() == sha256
    assert sha256[:8] in (SHAPES / "README.md").read_text()
