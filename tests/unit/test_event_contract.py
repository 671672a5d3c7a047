"""Pins the event contract: source, detail types, and the fields every detail carries."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from functions.models.events import (
    DETAIL_MODELS,
    DetailType,
    ModelAliasMoved,
    ModelVersionRegistered,
    ModelVersionValidated,
    PromotionRequested,
    RollbackRequested,
    ValidationRequested,
)
from functions.routing import EVENT_SOURCE
from tests.conftest import load_event


def test_the_project_has_one_source_and_nine_detail_types():
    assert EVENT_SOURCE == "registry-autopilot"
    assert {t.value for t in DetailType} == {
        "Model Version Registered",
        "Model Version Validated",
        "Model Alias Moved",
        "Promotion Requested",
        "Rollback Requested",
        "Validation Requested",
        "Promotion Pending",
        "Environment Promotion Requested",
        "Model Version Promoted",
    }
    assert set(DETAIL_MODELS) == {t.value for t in DetailType}


@pytest.mark.parametrize("model", list(DETAIL_MODELS.values()))
def test_every_detail_names_the_model_and_carries_a_correlation_id(model):
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert {"model_name", "correlation_id"} <= required
    assert "version" in model.model_fields
    assert "source_uri" in model.model_fields
    assert "run_id" in model.model_fields


@pytest.mark.parametrize(
    "model", [ModelVersionRegistered, ModelVersionValidated, ModelAliasMoved, PromotionRequested, ValidationRequested]
)
def test_version_events_require_a_version(model):
    assert model.model_fields["version"].is_required()


def test_the_recorded_registered_event_parses_and_round_trips():
    # GIVEN a Model Version Registered event as it sits on the bus
    event = load_event("model_version_registered.json")
    # WHEN its detail is parsed with the model its detail type names
    detail = DETAIL_MODELS[event["detail-type"]].model_validate(event["detail"])
    # THEN it is the registered model and serialises back to the same JSON (detail type not in the detail)
    assert isinstance(detail, ModelVersionRegistered)
    assert json.loads(detail.model_dump_json()) == event["detail"]
    assert event["source"] == EVENT_SOURCE


def test_unknown_fields_are_refused_so_drift_is_caught():
    event = load_event("model_version_registered.json")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        DETAIL_MODELS[event["detail-type"]].model_validate({**event["detail"], "surprise": 1})


def test_missing_required_fields_are_refused():
    with pytest.raises(ValidationError, match="correlation_id"):
        ModelVersionRegistered(model_name="m", version="1", source_uri="s3://b/k")


def test_rollback_target_version_is_optional():
    request = RollbackRequested(model_name="m", alias="champion", requested_by="ops", correlation_id="c")
    assert request.version is None
