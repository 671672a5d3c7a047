from __future__ import annotations

import json

import pytest

from functions.handlers.validate import Dependencies, lambda_handler
from tests.builders import FakeContext, emitted_metrics, sqs_event
from tests.builders import ValidationWorld as World
from tests.conftest import load_event
from tests.fakes import FakeQueue


def registered_event(version: str) -> str:
    event = load_event("model_version_registered.json")
    event["detail"].update(version=version, artifact=None, correlation_id=f"corr-{version}")
    return json.dumps(event)


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


@pytest.fixture
def deps(world):
    return Dependencies(validator=world.validator, queue=FakeQueue())


def test_registered_event_gets_a_verdict_and_a_metric(world, deps, capsys):
    # GIVEN a registered version that fails its policy
    world.version("1", accuracy=0.5)
    # WHEN its Model Version Registered event is handled
    result = lambda_handler(sqs_event(registered_event("1")), FakeContext(), dependencies=deps)
    # THEN the failed verdict is a result, not a batch failure, and it is counted per model
    assert result == {"batchItemFailures": []}
    assert world.events.published[0].status == "failed"
    assert emitted_metrics(capsys.readouterr().out)["ValidationFailed"] == [{"model": "churn"}]


def test_validation_requested_re_runs_the_gate(world, deps, capsys):
    world.version("1", accuracy=0.9)
    event = {
        **load_event("model_version_registered.json"),
        "detail-type": "Validation Requested",
        "detail": {"model_name": "churn", "version": "1", "requested_by": "ops", "correlation_id": "c"},
    }
    result = lambda_handler(sqs_event(json.dumps(event)), FakeContext(), dependencies=deps)
    assert result == {"batchItemFailures": []}
    assert world.events.published[0].status == "passed"
    assert emitted_metrics(capsys.readouterr().out)["ValidationPassed"] == [{"model": "churn"}]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"source": "someone.else"}, "unexpected_event"),
        ({"detail-type": "Model Alias Moved"}, "unexpected_event"),
        ({"detail": {"model_name": "churn"}}, "malformed_event"),
        ({"time": "yesterday"}, "malformed_event"),
    ],
)
def test_unexpected_or_malformed_events_are_dead_lettered(world, deps, change, reason):
    body = json.dumps({**load_event("model_version_registered.json"), **change})
    result = lambda_handler(sqs_event(body), FakeContext(), dependencies=deps)
    assert result == {"batchItemFailures": []}
    assert [d["attributes"]["reason"] for d in deps.queue.dead_letters] == [reason]


def test_a_deleted_version_is_acknowledged_not_retried(world, deps, capsys):
    result = lambda_handler(sqs_event(registered_event("404")), FakeContext(), dependencies=deps)
    assert result == {"batchItemFailures": []}
    assert deps.queue.dead_letters == []
    assert emitted_metrics(capsys.readouterr().out)["ValidationSkipped"] == [{"reason": "version_missing"}]


def test_registry_outage_is_retried(world, deps):
    world.version("1", accuracy=0.9)
    world.registry.down = True
    result = lambda_handler(sqs_event(registered_event("1")), FakeContext(), dependencies=deps)
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
