from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from functions.domain.tags import DEFAULT_MODEL_NAME_TAG
from functions.routing import REGISTER, REPLAY_SOURCE, ROUTES, Bus, Route, route
from functions.settings import Settings, function_environment
from tests.conftest import load_event


def _environment(route: Route = REGISTER, **overrides: str) -> dict[str, str]:
    env = function_environment(
        route,
        bucket="b",
        artifact_root_prefix="mlflow",
        event_bus_name="bus",
        idempotency_table="t",
        queue_url="q",
        dead_letter_queue_url="dlq",
        tracking_uri="http://127.0.0.1:5000",
        experiment_model_names={"1": "churn"},
    )
    return {**env, **overrides}


def test_function_environment_round_trips_through_settings():
    settings = Settings.model_validate(_environment())
    assert settings.ARTIFACT_BUCKET == "b"
    assert settings.EXPERIMENT_MODEL_NAMES == {"1": "churn"}
    assert settings.MODEL_NAME_TAG == DEFAULT_MODEL_NAME_TAG
    assert settings.MLFLOW_REGISTRY_URI == ""


def test_optional_backend_settings_are_passed_only_when_set():
    env = function_environment(
        REGISTER,
        bucket="b",
        artifact_root_prefix="p",
        event_bus_name="e",
        idempotency_table="t",
        queue_url="q",
        dead_letter_queue_url="d",
        tracking_uri="databricks",
        registry_uri="databricks-uc",
        credentials_secret_arn="arn:aws:secretsmanager:eu-west-1:1:secret:mlflow",
    )
    assert env["MLFLOW_REGISTRY_URI"] == "databricks-uc"
    assert env["MLFLOW_CREDENTIALS_SECRET_ARN"].endswith(":secret:mlflow")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ARTIFACT_BUCKET": ""}, "ARTIFACT_BUCKET"),
        ({"MAX_PENDING_SECONDS": "5"}, "MAX_PENDING_SECONDS"),
        ({"EXPERIMENT_MODEL_NAMES": "[1, 2]"}, "EXPERIMENT_MODEL_NAMES"),
        ({"MLMODEL_MAX_BYTES": "-1"}, "MLMODEL_MAX_BYTES"),
    ],
)
def test_bad_settings_fail_fast_naming_the_variable(overrides, message):
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate(_environment(**overrides))


def test_register_route_matches_mlmodel_uploads_of_the_bucket_only():
    pattern = REGISTER.event_pattern(bucket_name="artifact-bucket")
    assert pattern == {
        "source": ["aws.s3", "registry-autopilot.replay"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["artifact-bucket"]}, "object": {"key": [{"suffix": "/MLmodel"}]}},
    }
    assert REGISTER.bus is Bus.DEFAULT


@pytest.mark.parametrize(
    ("changes", "matches"),
    [
        ({}, True),
        ({"source": REPLAY_SOURCE}, True),
        ({"source": "someone.else"}, False),
        ({"detail-type": "Object Deleted"}, False),
        ({"bucket": "other-bucket"}, False),
        ({"key": "models/churn/1/model.pkl"}, False),
    ],
)
def test_register_pattern_accepts_s3_events_and_their_replay_source_only(changes, matches):
    # GIVEN the register rule's pattern, evaluated by moto's implementation of EventBridge's matching
    from moto.events.models import EventPattern

    rule = EventPattern.load(json.dumps(REGISTER.event_pattern(bucket_name="artifact-bucket")))
    event = load_event("s3_object_created_aws.json")
    event["source"] = changes.get("source", event["source"])
    event["detail-type"] = changes.get("detail-type", event["detail-type"])
    event["detail"]["bucket"]["name"] = changes.get("bucket", "artifact-bucket")
    event["detail"]["object"]["key"] = changes.get("key", event["detail"]["object"]["key"])

    # WHEN the event is matched against it
    # THEN only this bucket's MLmodel uploads match, as S3 sent them or as `replay send` re-sent them
    assert rule.matches_event(event) is matches


@pytest.mark.parametrize("candidate", ROUTES)
def test_every_route_leaves_room_for_six_function_timeouts(candidate):
    assert candidate.visibility_timeout_seconds >= 6 * candidate.timeout_seconds
    assert candidate.max_receive_count >= 3


def test_route_lookup_by_name():
    assert route("register") is REGISTER
    with pytest.raises(KeyError, match="no route named 'nope'"):
        route("nope")


@pytest.mark.parametrize("candidate", ROUTES)
def test_a_hung_mlflow_fails_a_full_batch_in_half_the_function_timeout(candidate, monkeypatch):
    # GIVEN a route's function environment, read back through MLflow's own variables
    from mlflow.environment_variables import (
        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    env = _environment(candidate)
    for name in (
        "MLFLOW_HTTP_REQUEST_TIMEOUT",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    ):
        monkeypatch.setenv(name, env[name])

    # WHEN every record of a full batch meets a server that accepts and never answers
    # THEN no request is retried by the client (the queue retries), and the batch's records all give up within half
    # the function timeout
    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 0
    assert MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get() == 0
    assert 1 <= MLFLOW_HTTP_REQUEST_TIMEOUT.get() * candidate.batch_size <= candidate.timeout_seconds / 2
