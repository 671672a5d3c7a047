"""MLflow workspaces: an upload under `<root>/workspaces/<workspace>/` is registered, validated and promoted there.

The fake registry does not scope by workspace; it records the workspace each call was made in
(`FakeRegistry.calls_by_workspace`), which is what the domain decides. `tests/integration/test_workspaces.py` runs
the same path against an MLflow server with workspaces on.
"""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from functions.domain.errors import Rejected
from functions.domain.ports import RunInfo
from functions.domain.validation import ValidationRequest
from functions.handlers.project_events import parse_project_event
from functions.models.events import (
    DETAIL_MODELS,
    ModelAliasMoved,
    ModelVersionRegistered,
    ModelVersionValidated,
    PromotionRequested,
    RollbackRequested,
    ValidationRequested,
    workspace_name_problem,
)
from functions.routing import EVENT_SOURCE
from tests.builders import RUN_ID, AliasWorld, ValidationWorld
from tests.builders import RegistrationWorld as World
from tests.conftest import load_event

TEAM_A_RUN = f"mlflow/workspaces/team-a/7/{RUN_ID}/artifacts/model"


def test_an_upload_under_a_workspace_is_registered_with_every_registry_call_in_that_workspace():
    # GIVEN run artifacts under MLflow's workspaces folder, workspace team-a
    world = World(experiment_model_names={"7": "credit"})
    upload = world.upload_model(TEAM_A_RUN)
    world.registry.runs[RUN_ID] = RunInfo(RUN_ID, "7", {})
    # WHEN registered
    outcome = world.registrar.register(upload)
    # THEN every registry call (run, lookup, creation) was made in team-a, and the event names the workspace
    assert outcome.status == "registered"
    assert world.registry.calls_by_workspace
    assert set(world.registry.calls_by_workspace) == {"team-a"}
    [event] = world.events.published
    assert isinstance(event, ModelVersionRegistered)
    assert event.workspace == "team-a"


def test_an_upload_outside_any_workspace_names_none_and_its_event_reads_as_before():
    # GIVEN run artifacts outside the workspaces folder
    world = World(experiment_model_names={"7": "credit"})
    upload = world.upload_model(f"mlflow/7/{RUN_ID}/artifacts/model")
    world.registry.runs[RUN_ID] = RunInfo(RUN_ID, "7", {})
    # WHEN registered
    world.registrar.register(upload)
    # THEN no call names a workspace, and the event's JSON has no workspace field at all
    assert set(world.registry.calls_by_workspace) == {None}
    [event] = world.events.published
    assert "workspace" not in json.loads(event.model_dump_json())


def test_validation_reads_and_writes_in_the_workspace_the_event_names(tmp_path):
    # GIVEN a registered version, and a validation request naming workspace team-a
    world = ValidationWorld(tmp_path)
    request = world.version("1", accuracy=0.9)
    request = ValidationRequest(request.model_name, request.version, request.correlation_id, workspace="team-a")
    # WHEN validated
    world.validator.validate(request)
    # THEN every registry call was made in team-a, and the verdict's event carries it on
    assert set(world.registry.calls_by_workspace) == {"team-a"}
    [event] = world.events.published
    assert isinstance(event, ModelVersionValidated)
    assert event.workspace == "team-a"


def test_alias_moves_act_in_the_verdicts_workspace_and_say_so(tmp_path):
    # GIVEN a passed verdict from workspace team-a
    world = AliasWorld(tmp_path)
    verdict = world.version("1", 0.9).model_copy(update={"workspace": "team-a"})
    # WHEN the aliases route acts on it
    world.keeper.on_verdict(verdict)
    # THEN the aliases moved with every registry call in team-a, and each move's event names team-a
    assert world.holder("champion") == "1"
    assert set(world.registry.calls_by_workspace) == {"team-a"}
    moves = [e for e in world.events.published if isinstance(e, ModelAliasMoved)]
    assert moves
    assert {move.workspace for move in moves} == {"team-a"}


@pytest.mark.parametrize("request_model", [PromotionRequested, RollbackRequested])
def test_promotion_and_rollback_requests_act_in_their_workspace(tmp_path, request_model):
    # GIVEN two passed versions in team-a, champion on v2 after v1 (so a rollback has a target)
    world = AliasWorld(tmp_path)
    for number in ("1", "2"):
        world.keeper.on_verdict(
            world.version(number, 0.5 + int(number) / 10).model_copy(update={"workspace": "team-a"})
        )
    world.registry.calls_by_workspace.clear()
    fields = {"model_name": "churn", "alias": "champion", "correlation_id": "c", "workspace": "team-a"}
    if request_model is PromotionRequested:
        request = PromotionRequested(**fields, version="1", approver="ana")
        # WHEN an approver promotes v1
        decision = world.keeper.promote(request)
    else:
        # WHEN an operator rolls champion back
        decision = world.keeper.rollback(RollbackRequested(**fields, requested_by="ana"))
    # THEN champion is on v1, moved with every call in team-a
    assert (decision.action, world.holder("champion")) == ("moved", "1")
    assert set(world.registry.calls_by_workspace) == {"team-a"}


@pytest.mark.parametrize("model", list(DETAIL_MODELS.values()))
def test_every_detail_takes_an_optional_workspace(model):
    assert "workspace" in model.model_fields
    assert not model.model_fields["workspace"].is_required()


def test_an_event_recorded_before_workspaces_still_parses_in_the_default_workspace():
    # GIVEN a recorded Model Version Registered event, from before the field
    event = load_event("model_version_registered.json")
    assert "workspace" not in event["detail"]
    # WHEN parsed
    detail = ModelVersionRegistered.model_validate(event["detail"])
    # THEN it reads as the functions' default workspace
    assert detail.workspace is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("team-a", None),
        ("default", None),
        ("a", "2 to 63"),
        ("x" * 64, "2 to 63"),
        ("Team-A", "lowercase"),
        ("-team", "lowercase"),
        ("team-", "lowercase"),
        ("team_a", "lowercase"),
        ("api", "reserved"),
        ("workspaces", "reserved"),
        ("static-files", "reserved"),
    ],
)
def test_workspace_names_follow_mlflows_rules(name, problem):
    found = workspace_name_problem(name)
    assert (found is None) if problem is None else (problem in (found or ""))


def _project_event(detail_type: str, detail: dict) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "e-1",
            "detail-type": detail_type,
            "source": EVENT_SOURCE,
            "account": "123456789012",
            "time": "2026-11-20T12:00:00Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": detail,
        }
    )


@pytest.mark.parametrize("workspace", ["Team_A", "api", "x"])
def test_an_event_naming_a_workspace_mlflow_refuses_is_rejected_with_its_reason(workspace):
    # GIVEN a Validation Requested event naming a workspace MLflow would refuse
    body = _project_event(
        "Validation Requested",
        {"model_name": "churn", "version": "1", "correlation_id": "c", "requested_by": "ana", "workspace": workspace},
    )
    # WHEN the validate route parses it
    with pytest.raises(Rejected) as refused:
        parse_project_event(body, ModelVersionRegistered, ValidationRequested)
    # THEN it is refused (dead-lettered) as an invalid workspace, naming the field
    assert refused.value.reason == "invalid_workspace"
    assert "workspace" in refused.value.message


def test_a_good_workspace_in_an_event_round_trips():
    detail = ValidationRequested(
        model_name="churn", version="1", correlation_id="c", requested_by="ana", workspace="team-a"
    )
    body = _project_event("Validation Requested", json.loads(detail.model_dump_json()))
    _, parsed = parse_project_event(body, ValidationRequested)
    assert parsed == detail
    with pytest.raises(ValidationError):
        ValidationRequested(model_name="churn", version="1", correlation_id="c", requested_by="a", workspace="A")
