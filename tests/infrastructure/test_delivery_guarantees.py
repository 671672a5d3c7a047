"""Template-wide guarantees: nothing is lost between hops, and no role writes what its route does not own.

Per-route details (patterns, retry numbers, FIFO wiring) are in test_route_pipelines.py and test_permissions.py;
these tests sweep the whole template, so a queue or rule added later without a DLQ or a retry policy fails here.
An alarm on each DLQ, on function errors and on the oldest message's age comes with the monitoring work.
"""

from __future__ import annotations

from typing import Any

from functions.routing import ROUTES
from tests.infrastructure.conftest import Synth
from tests.infrastructure.template_queries import as_list, role_statements, statement_actions

WRITE_TABLE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def _queue_ids_used_as_dlq(synth: Synth) -> set[str]:
    used = set()
    for queue in synth.resources("AWS::SQS::Queue").values():
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive:
            used.add(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0])
    for rule in synth.resources("AWS::Events::Rule").values():
        for target in rule["Properties"].get("Targets", []):
            if "DeadLetterConfig" in target:
                used.add(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
    return used


def test_every_queue_has_a_dead_letter_queue_or_is_one(default_synth: Synth):
    # GIVEN every SQS queue in the template
    queues = default_synth.resources("AWS::SQS::Queue")
    dead_letter_queues = _queue_ids_used_as_dlq(default_synth)

    # WHEN we keep those that neither redrive to a DLQ nor serve as one
    unprotected = sorted(
        logical_id
        for logical_id, queue in queues.items()
        if "RedrivePolicy" not in queue["Properties"] and logical_id not in dead_letter_queues
    )

    # THEN there is none, and every route queue redrives (the DLQs are terminal: 14 days, read by the operator)
    assert unprotected == []
    assert len([q for q in queues.values() if "RedrivePolicy" in q["Properties"]]) == len(ROUTES)


def test_every_rule_target_retries_and_dead_letters_except_the_recorders(custom_synth: Synth):
    # GIVEN every rule target of a stack with the recorder, and the recorder's two rules (acknowledged: the archives are the durable copy)
    recorder = {
        custom_synth.logical_id(custom_synth.autopilot.recorder.project_events_rule),
        custom_synth.logical_id(custom_synth.autopilot.recorder.artifact_events_rule),
    }
    targets = [
        (logical_id, target)
        for logical_id, rule in custom_synth.resources("AWS::Events::Rule").items()
        for target in rule["Properties"].get("Targets", [])
    ]

    # WHEN we look for targets without a retry policy or without a DLQ
    missing = sorted(
        logical_id for logical_id, target in targets if "RetryPolicy" not in target or "DeadLetterConfig" not in target
    )

    # THEN only the recorder's rules lack a DLQ, and those still retry
    assert missing == sorted(recorder)
    assert all("RetryPolicy" in target for _, target in targets)
    assert len(targets) >= len(ROUTES) + len(recorder)


def _table_writes(synth: Synth, role: Any) -> set[str]:
    return statement_actions(role_statements(synth, role)) & WRITE_TABLE_ACTIONS


def test_only_the_register_role_writes_the_idempotency_table(default_synth: Synth):
    # GIVEN each route's role
    pipelines = default_synth.autopilot.pipelines

    # WHEN we collect the DynamoDB write actions each may use
    writes = {name: _table_writes(default_synth, pipeline.role) for name, pipeline in pipelines.items()}

    # THEN register writes its idempotency records; validate and aliases write nothing
    assert writes["register"] >= {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    assert {name: actions for name, actions in writes.items() if name != "register"} == {
        name: set() for name in pipelines if name != "register"
    }


def test_no_route_role_puts_events_on_the_default_bus(default_synth: Synth):
    # GIVEN the project bus, and each route role's events:PutEvents resources
    bus_id = default_synth.logical_id(default_synth.autopilot.buses.project_bus)
    put_events = {
        name: [
            resource
            for statement in role_statements(default_synth, pipeline.role)
            if "events:PutEvents" in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
        ]
        for name, pipeline in default_synth.autopilot.pipelines.items()
    }

    # WHEN / THEN every route puts events on the project bus only (never on the default bus S3 feeds: no loops)
    expected = {"Fn::GetAtt": [bus_id, "Arn"]}
    assert {name: resources for name, resources in put_events.items() if resources} == {
        name: [expected] for name, resources in put_events.items() if resources
    }
    assert put_events["register"] == [expected]
