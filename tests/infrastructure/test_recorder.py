"""The recorder (rules -> log group) and the outputs `python -m replay archive|send|record` reads."""

from __future__ import annotations

import json

from functions.routing import ROUTES, project_archive_pattern, s3_recorder_pattern
from stacks import outputs
from tests.infrastructure.conftest import Synth

_BUCKET_MARKER = "__artifact-bucket-name__"


def _properties(synth: Synth, construct) -> dict:  # type: ignore[no-untyped-def]
    return synth.template_json["Resources"][synth.logical_id(construct)]["Properties"]


def _log_group_target_arn(synth: Synth) -> dict:
    log_group_id = synth.logical_id(synth.autopilot.recorder.log_group)
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":logs:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":log-group:",
                {"Ref": log_group_id},
            ],
        ]
    }


def test_recorder_copies_every_project_event_and_the_buckets_s3_events_to_its_log_group(custom_synth: Synth):
    # GIVEN the recorder (custom stack: recorder=true)
    recorder = custom_synth.autopilot.recorder
    bucket_ref = {"Ref": custom_synth.logical_id(custom_synth.autopilot.artifacts.bucket)}
    project_bus_ref = {"Ref": custom_synth.logical_id(custom_synth.autopilot.buses.project_bus)}

    # WHEN we read its two rules
    project_rule = _properties(custom_synth, recorder.project_events_rule)
    artifact_rule = _properties(custom_synth, recorder.artifact_events_rule)

    # THEN the project-bus rule takes every project event, the default-bus rule this bucket's S3 events (sent ones too)
    assert project_rule["EventBusName"] == project_bus_ref
    assert project_rule["EventPattern"] == project_archive_pattern()
    assert artifact_rule["EventBusName"] == "default"
    expected = s3_recorder_pattern(_BUCKET_MARKER)
    expected["detail"]["bucket"]["name"] = [bucket_ref]
    assert artifact_rule["EventPattern"] == expected
    assert artifact_rule["EventPattern"]["source"] == ["aws.s3", "registry-autopilot.replay"]
    # AND both write whole events (no input transformer) into the recorder's log group, with retries
    for rule in (project_rule, artifact_rule):
        (target,) = rule["Targets"]
        assert target["Arn"] == _log_group_target_arn(custom_synth)
        assert not {"Input", "InputPath", "InputTransformer", "RoleArn"} & set(target)
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}


def test_only_eventbridge_may_write_to_the_recorder_log_group_and_only_that_group(custom_synth: Synth):
    # GIVEN a stack with the recorder (recorder=true)
    log_group_id = custom_synth.logical_id(custom_synth.autopilot.recorder.log_group)

    # WHEN we read every CloudWatch Logs resource policy
    policies = custom_synth.resources("AWS::Logs::ResourcePolicy")

    # THEN there is one (no custom resource installs another), for events.amazonaws.com on the recorder's log group
    (policy,) = policies.values()
    document = policy["Properties"]["PolicyDocument"]["Fn::Join"][1]
    assert document[1] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    statement = json.loads(document[0] + "LOG_GROUP_ARN" + document[2])["Statement"]
    assert statement == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": "LOG_GROUP_ARN",
            "Sid": "EventBridgeWritesRecordedEvents",
        }
    ]
    # AND the rules wait for the policy, so the first recorded events are not refused
    rules = [custom_synth.autopilot.recorder.project_events_rule, custom_synth.autopilot.recorder.artifact_events_rule]
    for rule in rules:
        resource = custom_synth.template_json["Resources"][custom_synth.logical_id(rule)]
        assert resource["DependsOn"] == [next(iter(policies))]
    assert custom_synth.resources("Custom::CloudwatchLogResourcePolicy") == {}


def test_recorder_log_group_keeps_events_as_long_as_the_function_logs(custom_synth: Synth):
    # GIVEN a stack with the recorder and logRetentionDays 90
    synth = custom_synth

    # WHEN we read the recorder's log group
    resource = synth.template_json["Resources"][synth.logical_id(synth.autopilot.recorder.log_group)]

    # THEN it has that retention and goes with the stack
    assert resource["Properties"]["RetentionInDays"] == 90
    assert resource["DeletionPolicy"] == "Delete"


def test_the_default_stack_takes_none_of_the_accounts_ten_log_resource_policies(default_synth: Synth):
    # GIVEN the default stack (recorder off)
    # WHEN we look for the recorder and for CloudWatch Logs resource policies, native or installed by a custom resource
    # THEN there are none: an account may have 10 per region, and an eleventh would roll the first deployment back
    assert default_synth.autopilot.recorder is None
    assert default_synth.resources("AWS::Logs::ResourcePolicy") == {}
    assert default_synth.resources("Custom::CloudwatchLogResourcePolicy") == {}
    assert outputs.RECORDER_LOG_GROUP_NAME not in default_synth.template_json["Outputs"]


def test_outputs_name_what_the_replay_commands_look_up(default_synth: Synth, custom_synth: Synth):
    # GIVEN the outputs the replay command line reads (stacks.outputs)
    stack, template_outputs = default_synth.autopilot, default_synth.template_json["Outputs"]

    # WHEN we read their values
    def value(name: str) -> object:
        return template_outputs[name]["Value"]

    # THEN each one points at the resource it names
    assert value(outputs.BUCKET_NAME) == {"Ref": default_synth.logical_id(stack.artifacts.bucket)}
    assert value(outputs.EVENT_BUS_NAME) == {"Ref": default_synth.logical_id(stack.buses.project_bus)}
    assert value(outputs.ARTIFACT_EVENTS_ARCHIVE_NAME) == {
        "Ref": default_synth.logical_id(stack.buses.default_bus_archive)
    }
    assert value(outputs.PROJECT_EVENTS_ARCHIVE_NAME) == {
        "Ref": default_synth.logical_id(stack.buses.project_bus_archive)
    }
    recorder_output = custom_synth.template_json["Outputs"][outputs.RECORDER_LOG_GROUP_NAME]["Value"]
    assert recorder_output == {"Ref": custom_synth.logical_id(custom_synth.autopilot.recorder.log_group)}
    for route in ROUTES:
        rule_id = default_synth.logical_id(stack.pipelines[route.name].rule)
        assert value(outputs.rule_arn(route.name)) == {"Fn::GetAtt": [rule_id, "Arn"]}
        queue_id = default_synth.logical_id(stack.pipelines[route.name].queue)
        assert value(outputs.queue_url(route.name)) == {"Ref": queue_id}
