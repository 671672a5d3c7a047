from __future__ import annotations

import json

import pytest

from functions.domain.errors import Unavailable
from functions.domain.tags import origin_tag
from functions.handlers.register import Dependencies, lambda_handler, registration_work
from tests.builders import FakeContext, emitted_metrics, s3_event, sqs_event
from tests.builders import RegistrationWorld as World
from tests.conftest import load_event
from tests.fakes import FakeQueue, OncePerIdentity


@pytest.fixture
def world():
    return World()


@pytest.fixture
def deps(world):
    return Dependencies(register_once=OncePerIdentity(registration_work(world.registrar)), queue=FakeQueue())


@pytest.mark.parametrize("shape", ["aws", "moto"])
def test_real_and_emulator_event_shapes_both_register(world, deps, shape, capsys):
    # GIVEN a complete upload and its event, as AWS or as the local emulator shapes it
    world.upload_model("models/churn/2026-11-20")
    # WHEN the handler gets the batch
    result = lambda_handler(
        sqs_event(s3_event(shape, "models/churn/2026-11-20/MLmodel")), FakeContext(), dependencies=deps
    )
    # THEN the version is registered, nothing failed, and the metric is emitted
    assert result == {"batchItemFailures": []}
    assert [v.model_name for v in world.registry.versions] == ["churn"]
    expected_etag = "b1946ac92492d2347c6235b4d2611184"
    assert world.registry.versions[0].tags[origin_tag("etag")] == expected_etag
    assert "VersionRegistered" in emitted_metrics(capsys.readouterr().out)


def test_three_deliveries_register_once_and_count_duplicates(world, deps, capsys):
    # GIVEN the same event delivered three times in one batch
    world.upload_model("models/churn/2026-11-20")
    body = s3_event("aws", "models/churn/2026-11-20/MLmodel")
    # WHEN handled
    result = lambda_handler(sqs_event(body, body, body), FakeContext(), dependencies=deps)
    # THEN one version, two suppressed duplicates
    assert result == {"batchItemFailures": []}
    assert len(world.registry.versions) == 1
    metrics = emitted_metrics(capsys.readouterr().out)
    assert len(metrics["DuplicateSuppressed"]) >= 1
    assert len(world.events.published) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json at all", "malformed_event"),
        ('{"detail-type": "Object Created"}', "malformed_event"),
        (
            json.dumps({**load_event("s3_object_created_aws.json"), "detail": {"bucket": {"name": 3}}}),
            "malformed_event",
        ),
        ("OTHER_BUCKET", "foreign_bucket"),
        ("PATH_TRICK", "invalid_key"),
    ],
)
def test_bad_input_goes_to_the_dead_letter_queue_with_its_reason(world, deps, body, reason, capsys, caplog):
    # GIVEN a malformed event, an event for another bucket, or a hostile key
    if body == "OTHER_BUCKET":
        event = load_event("s3_object_created_aws.json")
        event["detail"]["bucket"]["name"] = "someone-elses"
        body = json.dumps(event)
    if body == "PATH_TRICK":
        body = s3_event("aws", "models/../../etc/1/MLmodel")
    # WHEN handled
    result = lambda_handler(sqs_event(body), FakeContext(), dependencies=deps)
    # THEN the record is handled (not retried), dead-lettered with the reason, logged and counted
    assert result == {"batchItemFailures": []}
    [dead] = deps.queue.dead_letters
    assert dead["body"] == body
    assert dead["attributes"]["reason"] == reason
    output = capsys.readouterr().out
    assert emitted_metrics(output)["Rejected"] == [{"reason": reason}]
    [logged] = [r for r in caplog.records if r.getMessage() == "rejected: sent to the dead-letter queue"]
    assert logged.levelname == "ERROR"
    assert logged.reason == reason
    assert world.registry.versions == []


def test_incomplete_upload_is_requeued_with_a_delay(world, deps):
    # GIVEN an MLmodel that arrived before its weights
    world.upload_model("models/churn/1", files=())
    body = s3_event("aws", "models/churn/1/MLmodel")
    # WHEN handled twice (the second time as a re-enqueued message)
    lambda_handler(sqs_event(body), FakeContext(), dependencies=deps)
    deferrals = deps.queue.requeued[0]["attributes"]["deferrals"]
    attributes = {"deferrals": {"stringValue": deferrals, "dataType": "String"}}
    result = lambda_handler(sqs_event(body, attributes=attributes), FakeContext(), dependencies=deps)
    # THEN it is re-enqueued each time with a growing delay, never failed nor dead-lettered
    assert result == {"batchItemFailures": []}
    assert [r["delay_seconds"] for r in deps.queue.requeued] == [5, 10]
    assert [r["attributes"]["deferrals"] for r in deps.queue.requeued] == ["1", "2"]
    assert deps.queue.dead_letters == []
    assert world.registry.versions == []


def test_registry_outage_fails_the_record_with_backoff(world, deps, capsys):
    # GIVEN MLflow is unreachable
    world.upload_model("models/churn/1")
    world.registry.down = True
    # WHEN a record arrives for the third time
    result = lambda_handler(
        sqs_event(s3_event("aws", "models/churn/1/MLmodel"), receive_count=3), FakeContext(), dependencies=deps
    )
    # THEN it is reported as a batch item failure and comes back after a backoff
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert deps.queue.visibility == [("rh-0", 8)]
    assert deps.queue.dead_letters == []
    assert emitted_metrics(capsys.readouterr().out)["Retried"] == [{"reason": "registry_unavailable"}]


def test_one_bad_record_does_not_fail_the_others(world, deps):
    # GIVEN a batch with a good upload, an outage-hit record and a malformed one
    world.upload_model("models/churn/1")
    good = s3_event("aws", "models/churn/1/MLmodel")

    inner = deps.register_once

    def flaky(payload, context=None):  # type: ignore[no-untyped-def]
        if payload["key"].startswith("models/flaky/"):
            raise Unavailable("registry_unavailable", "timeout")
        return inner(payload, context)

    deps = Dependencies(register_once=flaky, queue=deps.queue)
    # WHEN handled
    result = lambda_handler(
        sqs_event(good, s3_event("aws", "models/flaky/1/MLmodel"), "{broken"), FakeContext(), dependencies=deps
    )
    # THEN only the outage-hit record is retried
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert len(world.registry.versions) == 1
    assert len(deps.queue.dead_letters) == 1


def test_delete_event_is_skipped_not_failed(world, deps, capsys):
    body = json.dumps(load_event("s3_object_deleted_aws.json"))
    result = lambda_handler(sqs_event(body), FakeContext(), dependencies=deps)
    assert result == {"batchItemFailures": []}
    assert deps.queue.dead_letters == []
    assert emitted_metrics(capsys.readouterr().out)["RegistrationSkipped"] == [{"reason": "not_object_created"}]


def test_replayed_event_is_logged_with_its_replay_name(world, deps, caplog):
    world.upload_model("models/churn/2026-11-20")
    event = json.loads(s3_event("aws", "models/churn/2026-11-20/MLmodel"))
    event["replay-name"] = "yesterday"
    lambda_handler(sqs_event(json.dumps(event)), FakeContext(), dependencies=deps)
    assert world.events.published[0].replay_name == "yesterday"
    assert world.registry.versions[0].tags[origin_tag("replay_name")] == "yesterday"
    registered = [r for r in caplog.records if r.getMessage() == "model version registered"]
    assert registered, "the registration is logged"
