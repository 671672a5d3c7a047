"""`python -m ops` without a pipeline: the deployed stack it targets is opened as `replay` opens one, and its reads go
through the registry port (here the in-memory fake, as the adapter would answer)."""

from __future__ import annotations

import json

import pytest

from functions.domain.promotion import HistoryEntry, append_history
from functions.domain.proof import ProofOutcome, ProofPlan, outcome_checks
from functions.domain.tags import TAG_STATUS, TAG_VERDICT, history_tag
from ops import target as ops_target
from ops.__main__ import main
from ops.target import TargetError, from_stack
from replay.aws_stack import AwsProblem, DeployedStack
from tests.builders import ValidationWorld
from tests.fakes import FakeModelProofs, FakeRegistry

SANDBOX = json.dumps(
    {"event_bus": "bus", "mlflow_tracking_uri": "http://mlflow", "aws_endpoint_url": "http://aws", "queues": {}}
)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    fake = FakeRegistry()
    monkeypatch.setattr("functions.adapters.registry_factory.open_registry", lambda tracking_uri, registry_uri="": fake)
    return fake


def test_a_stack_target_is_built_from_the_opened_stacks_outputs(monkeypatch: pytest.MonkeyPatch):
    # GIVEN a deployed stack with its bus and one route's queues among its outputs
    outputs = {
        "EventBusName": "autopilot-bus",
        "RegisterQueueUrl": "https://sqs/register",
        "RegisterDeadLetterQueueUrl": "https://sqs/register-dlq",
        "ValidateDeadLetterQueueUrl": "https://sqs/validate-dlq",  # its queue's output is missing
    }
    opened = DeployedStack(name="S", region="eu-west-1", outputs=outputs, session=None)
    monkeypatch.setattr(ops_target, "open_stack", lambda name, region=None: opened)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example")
    # WHEN ops targets it
    target = from_stack("S", region="eu-west-1")
    # THEN the bus, the region, MLflow and the complete route queues come from it, and its clients from its session
    assert (target.event_bus, target.region, target.tracking_uri) == (
        "autopilot-bus",
        "eu-west-1",
        "https://mlflow.example",
    )
    assert target.queues == {
        "register": {"queue_url": "https://sqs/register", "dead_letter_queue_url": "https://sqs/register-dlq"}
    }
    assert target.stack is opened


@pytest.mark.parametrize(
    ("outputs", "problem", "message"),
    [
        ({}, None, "stack 'S': stack 'S' in eu-west-1 has no output 'EventBusName'"),
        (None, AwsProblem("no AWS credentials found"), "stack 'S': no AWS credentials found"),
    ],
)
def test_a_stack_that_cannot_be_opened_is_a_target_error(monkeypatch, outputs, problem, message):
    # GIVEN a stack without the bus output, or AWS refusing to open it
    def open_stack(name, region=None):  # type: ignore[no-untyped-def]
        if problem:
            raise problem
        return DeployedStack(name=name, region="eu-west-1", outputs=outputs, session=None)

    monkeypatch.setattr(ops_target, "open_stack", open_stack)
    # WHEN ops targets it; THEN the error names the stack and says what is wrong
    with pytest.raises(TargetError, match=message):
        from_stack("S")


def test_history_is_read_through_the_registry_port(registry: FakeRegistry, capsys: pytest.CaptureFixture[str]):
    # GIVEN a model whose champion moved once
    registry.create_version("churn", "s3://b/churn/1", run_id=None, model_id=None, tags={})
    entry = HistoryEntry("1", None, "auto: passed validation", "autopilot", "c1", "2026-11-20T12:00:00+00:00")
    registry.set_model_tag("churn", history_tag("champion"), append_history([], entry))
    # WHEN ops shows the history
    assert main(["--sandbox", SANDBOX, "history", "churn", "--json"]) == 0
    # THEN it is the tag's moves
    [shown] = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["actor"], shown["correlation_id"]) == ("1", "autopilot", "c1")


def test_the_verdict_is_the_versions_validation_tags(registry: FakeRegistry, capsys: pytest.CaptureFixture[str]):
    # GIVEN a version that passed
    tags = {TAG_STATUS: "passed", TAG_VERDICT: json.dumps({"reasons": []}), "other": "x"}
    registry.create_version("churn", "s3://b/churn/1", run_id=None, model_id=None, tags=tags)
    # WHEN ops shows its verdict
    assert main(["--sandbox", SANDBOX, "verdict", "churn", "1", "--json"]) == 0
    # THEN it is the validation tags only
    shown = json.loads(capsys.readouterr().out)
    assert shown == {
        "model": "churn",
        "version": "1",
        TAG_STATUS: "passed",
        TAG_VERDICT: tags[TAG_VERDICT],
    }


def test_the_verdict_of_a_failed_proof_prints_its_check_as_one_line_like_any_other(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
):
    # GIVEN a version whose metric passed and whose proof failed (its input example lacks a column), as the
    # validate route records it
    outcome = ProofOutcome(
        stage="input",
        passed=False,
        error='Traceback (most recent call last):\n  File "proof_runner.py", line 73, in _probe\n'
        "mlflow.exceptions.MlflowException: Model is missing inputs ['proline'].",
    )
    failed = outcome_checks(ProofPlan("input_example.json", True), outcome)
    world = ValidationWorld(tmp_path, "metrics: {accuracy: {min: 0.8}}\nproof: smoke\n", proofs=FakeModelProofs(failed))
    world.validator.validate(world.version("1", accuracy=0.9))
    monkeypatch.setattr(
        "functions.adapters.registry_factory.open_registry", lambda tracking_uri, registry_uri="": world.registry
    )
    # WHEN ops shows its verdict
    assert main(["--sandbox", SANDBOX, "verdict", "churn", "1"]) == 0
    # THEN the failed proof check is a reason like any failed check: its reason, stage and error, on one line
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "churn v1: failed"
    reasons = [line for line in lines if line.lstrip().startswith("reasons ")]
    assert reasons == [
        "  reasons          signature_mismatch: input failed: "
        "mlflow.exceptions.MlflowException: Model is missing inputs ['proline']."
    ]
    assert not [line for line in lines if "Traceback" in line or "_probe" in line]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", "nope"], "the registry has no model named 'nope'"),
        (["verdict", "churn", "9"], "the registry has no version 9 of 'churn'"),
        (["promote", "churn", "9"], "the registry has no version 9 of 'churn'"),
    ],
)
def test_what_the_registry_does_not_have_is_a_clear_error(registry, capsys, argv, message):
    # GIVEN a model with one version
    registry.create_version("churn", "s3://b/churn/1", run_id=None, model_id=None, tags={})
    # WHEN ops reads something the registry does not have; THEN it fails with what is missing
    assert main(["--sandbox", SANDBOX, *argv]) == 2
    assert f"ops: error: {message}" in capsys.readouterr().err


def test_a_registry_that_cannot_answer_is_a_clear_error(registry, capsys):
    # GIVEN the registry is down
    registry.down = True
    # WHEN ops reads from it; THEN it fails with the adapter's message
    assert main(["--sandbox", SANDBOX, "verdict", "churn", "1"]) == 2
    assert "ops: error: MLflow is down" in capsys.readouterr().err


def test_workspace_reads_are_made_in_it_and_requests_name_it(registry, monkeypatch, capsys):
    # GIVEN a version that passed, and a bus that keeps what ops puts on it
    registry.create_version("churn", "s3://b/churn/1", run_id=None, model_id=None, tags={TAG_STATUS: "passed"})
    registry.calls_by_workspace.clear()
    published = []
    monkeypatch.setattr("ops.__main__.publish", lambda target, request: published.append(request))
    # WHEN an approver promotes it in workspace team-a
    assert main(["--sandbox", SANDBOX, "--workspace", "team-a", "promote", "churn", "1"]) == 0
    # THEN the version was read in team-a, and the request names team-a for the aliases route
    assert set(registry.calls_by_workspace) == {"team-a"}
    [request] = published
    assert request.workspace == "team-a"


def test_a_workspace_name_mlflow_refuses_is_a_clear_error(registry, capsys):
    # WHEN ops is given a workspace MLflow would refuse; THEN it stops before anything, saying why
    assert main(["--sandbox", SANDBOX, "--workspace", "Team_A", "verdict", "churn", "1"]) == 2
    assert "ops: error: --workspace: workspace name 'Team_A'" in capsys.readouterr().err
    assert registry.calls_by_workspace == []
