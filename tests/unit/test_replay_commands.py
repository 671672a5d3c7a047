"""The pure parts of `replay archive|send|record` and `replay local --context`: times, windows, progress, the
entries `send` puts, the file names `record` writes, and the settings a context file gives the sandbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions.routing import REPLAY_SOURCE
from replay.archive import Archive, ReplayTimedOut, check_window, describe_progress, replay_name, rule_arns, wait
from replay.aws_stack import AwsProblem, DeployedStack
from replay.recorder import file_name
from replay.recordings import RecordedEvent
from replay.send import prepare
from replay.times import parse_duration, parse_time
from sandbox.context import ContextError, load_context
from tests.conftest import load_event

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ARCHIVE = Archive(
    name="RegistryAutopilot-artifacts",
    arn="arn:aws:events:eu-west-1:123456789012:archive/RegistryAutopilot-artifacts",
    bus_arn="arn:aws:events:eu-west-1:123456789012:event-bus/default",
    retention_days=30,
    state="ENABLED",
)


# --- times -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("2h", NOW - timedelta(hours=2)),
        ("90s", NOW - timedelta(seconds=90)),
        ("7d", NOW - timedelta(days=7)),
        ("2026-11-20T10:00:00Z", datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("2026-11-20T10:00:00", datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("2026-11-20T11:00:00+01:00", datetime(2026, 11, 20, 10, tzinfo=UTC)),
    ],
)
def test_times_are_now_a_duration_ago_or_iso_8601_in_utc_by_default(text, expected):
    # GIVEN a time as typed on the command line
    # WHEN it is parsed
    # THEN it is that moment (naive ISO times are UTC)
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2 hours", "-1h", "2026-11-20 noon", "2026-13-01"])
def test_unreadable_times_are_refused_with_the_accepted_forms(text):
    # GIVEN a time the command cannot read
    # WHEN it is parsed
    # THEN the error says what is accepted
    with pytest.raises(ValueError, match="neither 'now', a duration ago such as 2h, nor an ISO 8601 time"):
        parse_time(text, now=NOW)


def test_durations_need_a_unit_and_a_positive_amount():
    assert parse_duration("30m") == timedelta(minutes=30)
    with pytest.raises(ValueError, match="not a duration such as 30m"):
        parse_duration("30")
    with pytest.raises(ValueError, match="not a duration such as 30m"):
        parse_duration("0h")


# --- archive -----------------------------------------------------------------------------------------------


def test_a_window_inside_the_retention_is_accepted():
    # GIVEN an archive keeping 30 days
    # WHEN a window of the last 29 days is checked
    # THEN nothing is raised
    check_window(ARCHIVE, NOW - timedelta(days=29), NOW, now=NOW)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (
            NOW - timedelta(days=31),
            NOW,
            r"older than archive RegistryAutopilot-artifacts keeps events: it retains "
            r"them 30 days \(archiveRetentionDays\), so the oldest it can replay are from about 2026-10-27T12:00:00Z",
        ),
        (NOW - timedelta(hours=1), NOW - timedelta(hours=2), r"--to \(2026-11-26T10:00:00Z\) must be after --from"),
        (NOW + timedelta(hours=1), NOW + timedelta(hours=2), r"--from \(2026-11-26T13:00:00Z\) is in the future"),
    ],
)
def test_windows_eventbridge_cannot_replay_are_refused_before_asking_it(start, end, message):
    # GIVEN a window too old, reversed, or in the future
    # WHEN it is checked against the archive
    # THEN it is refused with the reason
    with pytest.raises(AwsProblem, match=message):
        check_window(ARCHIVE, start, end, now=NOW)


def test_an_archive_that_keeps_events_forever_accepts_any_past_window():
    forever = Archive(**{**ARCHIVE.__dict__, "retention_days": 0})
    check_window(forever, NOW - timedelta(days=3650), NOW, now=NOW)


def test_rule_arns_on_the_archives_bus_are_accepted_as_they_are():
    # GIVEN a rule ARN on the default bus and one on a custom bus
    stack = DeployedStack(name="S", region="eu-west-1", outputs={}, session=None)
    on_default = "arn:aws:events:eu-west-1:123456789012:rule/RegistryAutopilot-RegisterRule-1"
    on_project = "arn:aws:events:eu-west-1:123456789012:rule/RegistryAutopilot-events/Recorder"
    # WHEN they are resolved for the default bus's archive
    # THEN the first is kept, the second refused
    assert rule_arns(stack, ARCHIVE, [on_default]) == [on_default]
    with pytest.raises(AwsProblem, match="is not on bus 'default'"):
        rule_arns(stack, ARCHIVE, [on_project])


def test_replay_names_are_what_eventbridge_accepts():
    # GIVEN the longest stack name the config allows
    name = replay_name("S" * 100, "artifacts", NOW)
    # THEN the name fits 64 characters of [.-_A-Za-z0-9] and keeps the time
    assert len(name) <= 64
    assert name.endswith("-artifacts-20261126T120000Z")
    assert all(ch.isalnum() or ch in ".-_" for ch in name)
    assert replay_name("RegistryAutopilot", "project", NOW) == "RegistryAutopilot-project-20261126T120000Z"


def _replay(state: str, last: datetime | None = None, reason: str | None = None) -> dict:
    description = {
        "ReplayName": "r1",
        "State": state,
        "EventStartTime": NOW - timedelta(hours=1),
        "EventEndTime": NOW,
    }
    if last:
        description["EventLastReplayedTime"] = last
    if reason:
        description["StateReason"] = reason
    return description


def test_wait_reports_each_change_of_progress_until_the_replay_ends():
    # GIVEN a replay that starts, runs through its window and completes
    answers = iter(
        [
            _replay("STARTING"),
            _replay("RUNNING", NOW - timedelta(minutes=45)),
            _replay("RUNNING", NOW - timedelta(minutes=45)),
            _replay("RUNNING", NOW - timedelta(minutes=15)),
            _replay("COMPLETED", NOW),
        ]
    )
    messages: list[str] = []
    sleeps: list[float] = []

    # WHEN it is waited for
    final = wait(lambda: next(answers), progress=messages.append, poll_seconds=2.0, sleep=sleeps.append)

    # THEN every change was reported once, with the share of the window, and the end state is returned
    assert final["State"] == "COMPLETED"
    assert messages == [
        "replay r1: STARTING",
        "replay r1: RUNNING, replayed events up to 2026-11-26T11:15:00Z (25% of the window)",
        "replay r1: RUNNING, replayed events up to 2026-11-26T11:45:00Z (75% of the window)",
        "replay r1: COMPLETED, replayed events up to 2026-11-26T12:00:00Z (100% of the window)",
    ]
    assert sleeps == [2.0, 2.0, 2.0, 2.0]


def test_wait_gives_up_at_its_timeout_and_says_the_replay_goes_on():
    # GIVEN a replay that keeps running, and a clock that moves 10 s per look
    ticks = iter(range(0, 1000, 10))

    # WHEN it is waited for with a 25 s timeout
    # THEN the wait stops with the last description
    with pytest.raises(ReplayTimedOut, match="replay r1 is still RUNNING") as raised:
        wait(
            lambda: _replay("RUNNING"),
            progress=lambda message: None,
            timeout=25,
            clock=lambda: next(ticks),
            sleep=lambda seconds: None,
        )
    assert raised.value.description["State"] == "RUNNING"


def test_a_failed_replay_shows_eventbridges_reason():
    assert describe_progress(_replay("FAILED", reason="Destination rule was deleted")) == (
        "replay r1: FAILED - Destination rule was deleted"
    )


# --- send --------------------------------------------------------------------------------------------------


def _recorded(event: dict, label: str = "event.json") -> RecordedEvent:
    return RecordedEvent(file=label, index=0, event=event)


def test_an_s3_event_from_another_bucket_is_sent_under_the_replay_source_for_the_stacks_object():
    # GIVEN a recorded AWS S3 event of another bucket, and the stack's copy of its object
    event = load_event("s3_object_created_aws.json")
    head = {"VersionId": "v-stack", "ETag": '"0123abcd"', "ContentLength": 99}

    # WHEN it is prepared for the stack
    sending = prepare(_recorded(event), bucket="stack-bucket", project_bus="stack-bus", head=lambda key: head)

    # THEN it goes to the default bus under the replay source, naming the stack's bucket and object
    assert sending.entry is not None
    assert sending.entry["EventBusName"] == "default"
    assert sending.entry["Source"] == REPLAY_SOURCE
    detail = json.loads(sending.entry["Detail"])
    assert detail["bucket"]["name"] == "stack-bucket"
    assert detail["object"] == {**event["detail"]["object"], "version-id": "v-stack", "etag": "0123abcd", "size": 99}
    assert sending.entry["Resources"] == ["arn:aws:s3:::stack-bucket"]
    assert sending.notes == ["bucket artifact-bucket -> stack-bucket", f"source aws.s3 -> {REPLAY_SOURCE}"]


def test_an_s3_event_of_the_stacks_own_bucket_keeps_the_version_it_names():
    # GIVEN a recorded S3 event of the stack's bucket
    event = load_event("s3_object_created_aws.json")

    # WHEN it is prepared (no object lookup is needed)
    def head(key: str) -> dict:
        raise AssertionError("the object was looked up")

    sending = prepare(_recorded(event), bucket="artifact-bucket", project_bus="stack-bus", head=head)

    # THEN the detail is sent as recorded, only the source changes
    assert sending.entry is not None
    assert json.loads(sending.entry["Detail"]) == event["detail"]
    assert sending.entry["Source"] == REPLAY_SOURCE


def test_a_missing_object_is_sent_with_a_warning():
    event = load_event("s3_object_created_aws.json")
    sending = prepare(_recorded(event), bucket="stack-bucket", project_bus="bus", head=lambda key: None)
    assert sending.entry is not None
    assert "warning: s3://stack-bucket/models/churn/2026-11-20/MLmodel does not exist" in sending.notes[1]


def test_a_project_event_goes_to_the_project_bus_and_other_aws_events_are_refused():
    # GIVEN a project event and an EC2 event
    project = load_event("model_version_registered.json")
    ec2 = {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}

    # WHEN they are prepared
    sent = prepare(_recorded(project), bucket="artifact-bucket", project_bus="stack-bus")
    refused = prepare(_recorded(ec2), bucket="artifact-bucket", project_bus="stack-bus")

    # THEN the project event goes to the project bus as it is, the EC2 event nowhere
    assert sent.entry is not None
    assert (sent.entry["EventBusName"], sent.entry["Source"]) == ("stack-bus", "registry-autopilot")
    assert refused.entry is None
    assert refused.error == "aws.ec2 events cannot be sent: only S3 and project events can"


# --- record ------------------------------------------------------------------------------------------------


def test_recorded_file_names_sort_by_time_and_cannot_leave_the_folder():
    # GIVEN a recorded event whose id and detail type are hostile
    event = {"time": "2026-11-20T10:15:30Z", "detail-type": "../../etc/passwd", "id": "../../x", "detail": {}}

    # WHEN its file name is made
    name = file_name(event, {"eventId": "1", "timestamp": 0})

    # THEN it is a plain name starting with the UTC time
    assert name == "20261120T101530Z-etc-passwd-x.json"
    assert "/" not in name


def test_a_recorded_event_without_a_time_is_named_by_its_log_time():
    name = file_name({"detail-type": "Object Created", "detail": {}}, {"eventId": "abcdef0123", "timestamp": 0})
    assert name == "19700101T000000Z-object-created-abcdef01.json"


# --- local --context ---------------------------------------------------------------------------------------


def test_a_cdk_json_gives_the_sandbox_the_deployments_function_settings(tmp_path: Path):
    # GIVEN a cdk.json with the keys that change what the functions do, and others
    path = tmp_path / "cdk.json"
    context = {
        "artifactRootPrefix": "teams/mlflow",
        "modelNameTag": "team.model",
        "experimentModelNames": {"fraud": "fraud-detector"},
        "maxPendingHours": 2,
        "stackName": "Ignored",
        "@aws-cdk/core:checkSecretUsage": True,
    }
    path.write_text(json.dumps({"app": "python3 app.py", "context": context}))

    # WHEN it is loaded
    settings = load_context(path)

    # THEN the sandbox gets them as the stack passes them to the functions
    assert settings.artifact_root_prefix == "teams/mlflow"
    assert settings.function_settings == {
        "model_name_tag": "team.model",
        "experiment_model_names": {"fraud": "fraud-detector"},
        "max_pending_seconds": 7200,
    }


def test_a_bad_context_value_is_refused_naming_the_file_and_key(tmp_path: Path):
    path = tmp_path / "context.json"
    path.write_text(json.dumps({"maxPendingHours": "soon"}))
    with pytest.raises(ContextError, match=r"context\.json: context key 'maxPendingHours' must be an integer"):
        load_context(path)
