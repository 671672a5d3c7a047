"""`python -m replay archive|send|record --stack NAME` against a stack on moto's server (127.0.0.1 only).

The module starts its own moto server (the sandbox's launcher, `sandbox.moto_server`) and builds there what the
commands use of a deployed stack: the artifact bucket, the project bus, both archives, the register rule (into a
queue this module reads), the recorder (two rules into a log group) and a CloudFormation stack whose outputs name
them, under the names `stacks.outputs` gives the real stack's outputs (`tests/infrastructure/test_recorder.py` checks
the real template has them). The resources are created with boto3 and the stack holds only the outputs: moto's
CloudFormation returns object reprs instead of names for `Ref` of an event bus or an archive.

Known limits of moto (platform facts): a replay completes synchronously and ignores its time window and FilterArns,
and S3's own events are not archived; the tests put S3-shaped events with PutEvents, which moto accepts under the
`aws.s3` source.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from functions.project import ROOT
from functions.routing import REGISTER, REPLAY_SOURCE, project_archive_pattern, s3_archive_pattern, s3_recorder_pattern
from replay import recorder
from replay.__main__ import main
from replay.aws_stack import open_stack
from replay.recordings import load_recording
from sandbox.processes import LOCALHOST, ChildProcess, free_port, wait_until_healthy
from stacks import outputs
from tests.conftest import load_event

REGION = "us-east-1"
STACK = "RegistryAutopilotMoto"
BUCKET = "registry-autopilot-moto-artifacts"
PROJECT_BUS = f"{STACK}-events"
RETENTION_DAYS = 7

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class MotoStack:
    endpoint: str
    register_queue_url: str
    project_queue_url: str
    log_group: str
    register_rule_arn: str

    def client(self, service: str):  # type: ignore[no-untyped-def]
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def moto_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoStack]:
    port = free_port()
    child = ChildProcess.start(
        "moto server",
        [sys.executable, "-m", "sandbox.moto_server", "-H", LOCALHOST, "-p", str(port)],
        env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        log_path=tmp_path_factory.mktemp("moto") / "moto.log",
        cwd=ROOT,
    )
    try:
        endpoint = f"http://{LOCALHOST}:{port}"
        wait_until_healthy(f"{endpoint}/moto-api/", child=child, deadline=time.monotonic() + 30, what="moto server")
        yield _deploy(endpoint)
    finally:
        child.stop()


def _deploy(endpoint: str) -> MotoStack:
    """What the stack creates that the replay commands use, and the stack's outputs naming it."""
    stack = MotoStack(endpoint, "", "", "", "")
    s3, events, sqs, logs, cfn = (stack.client(name) for name in ("s3", "events", "sqs", "logs", "cloudformation"))
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    bus_arn = events.create_event_bus(Name=PROJECT_BUS)["EventBusArn"]
    default_bus_arn = events.describe_event_bus(Name="default")["Arn"]
    for name, source, pattern in (
        (f"{STACK}-artifacts", default_bus_arn, s3_archive_pattern(BUCKET)),
        (f"{STACK}-project", bus_arn, project_archive_pattern()),
    ):
        events.create_archive(
            ArchiveName=name, EventSourceArn=source, EventPattern=json.dumps(pattern), RetentionDays=RETENTION_DAYS
        )

    def queue_with_rule(name: str, bus: str, pattern: dict) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule_arn = events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))["RuleArn"]
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
        return url, rule_arn

    register_queue, register_rule = queue_with_rule(
        f"{STACK}-register", "default", REGISTER.event_pattern(bucket_name=BUCKET)
    )
    project_queue, _ = queue_with_rule(f"{STACK}-project-events", PROJECT_BUS, project_archive_pattern())

    log_group = f"{STACK}-recorder"
    logs.create_log_group(logGroupName=log_group)
    log_group_arn = f"arn:aws:logs:{REGION}:123456789012:log-group:{log_group}"
    for name, bus, pattern in (
        (f"{STACK}-record-project", PROJECT_BUS, project_archive_pattern()),
        (f"{STACK}-record-artifacts", "default", s3_recorder_pattern(BUCKET)),
    ):
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "recorder", "Arn": log_group_arn}])

    stack_outputs = {
        outputs.BUCKET_NAME: BUCKET,
        outputs.EVENT_BUS_NAME: PROJECT_BUS,
        outputs.ARTIFACT_EVENTS_ARCHIVE_NAME: f"{STACK}-artifacts",
        outputs.PROJECT_EVENTS_ARCHIVE_NAME: f"{STACK}-project",
        outputs.RECORDER_LOG_GROUP_NAME: log_group,
        outputs.rule_arn(REGISTER.name): register_rule,
        outputs.queue_url(REGISTER.name): register_queue,
    }
    _create_stack(cfn, STACK, stack_outputs)
    # A stack deployed before the replay outputs existed.
    _create_stack(cfn, "RegistryAutopilotOld", {outputs.BUCKET_NAME: BUCKET, outputs.EVENT_BUS_NAME: PROJECT_BUS})
    return MotoStack(endpoint, register_queue, project_queue, log_group, register_rule)


def _create_stack(cfn, name: str, values: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in values.items()},
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))


@pytest.fixture(autouse=True)
def aws_env(moto_stack: MotoStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment of someone with (dummy) credentials for the stack's account and region, on moto."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_stack.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _drain(stack: MotoStack, queue_url: str) -> list[dict]:
    sqs, bodies = stack.client("sqs"), []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _s3_event(key: str, *, bucket: str = BUCKET) -> dict:
    event = load_event("s3_object_created_aws.json")
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    return event


def _put(stack: MotoStack, event: dict, *, bus: str = "default") -> str:
    response = stack.client("events").put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event.get("resources", []),
                "EventBusName": bus,
            }
        ]
    )
    return response["Entries"][0]["EventId"]


def _key(prefix: str) -> str:
    return f"models/{prefix}-{uuid.uuid4().hex[:8]}/1/MLmodel"


# --- archive -----------------------------------------------------------------------------------------------


def test_archive_replays_the_window_into_its_bus_for_the_chosen_rule(moto_stack: MotoStack, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN an S3 event of the bucket that reached the register rule and the artifacts archive
    key = _key("archived")
    _put(moto_stack, _s3_event(key))
    live = [event for event in _drain(moto_stack, moto_stack.register_queue_url) if _object_key(event) == key]
    assert len(live) == 1
    assert "replay-name" not in live[0]

    # WHEN the last ten minutes of the archive are replayed to the register rule
    code = main(["archive", "--stack", STACK, "--from", "10m", "--rule", "register", "--name", f"r-{key[7:20]}"])

    # THEN the command reports the replay as completed, after showing its progress
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"replay r-{key[7:20]} COMPLETED")
    assert "rules    register" in out
    assert "replay: started replay" in err
    assert f"replay r-{key[7:20]}: COMPLETED" in err
    # AND the event came back to the register rule, carrying the replay's name
    replayed = [event for event in _drain(moto_stack, moto_stack.register_queue_url) if _object_key(event) == key]
    assert [event["replay-name"] for event in replayed] == [f"r-{key[7:20]}"]
    assert replayed[0]["detail"] == live[0]["detail"]
    # AND EventBridge was asked for exactly that: this archive, into its own bus, filtered to the register rule
    replay = moto_stack.client("events").describe_replay(ReplayName=f"r-{key[7:20]}")
    assert replay["EventSourceArn"].endswith(f":archive/{STACK}-artifacts")
    assert replay["Destination"] == {
        "Arn": f"arn:aws:events:{REGION}:123456789012:event-bus/default",
        "FilterArns": [moto_stack.register_rule_arn],
    }
    assert replay["EventEndTime"] - replay["EventStartTime"] == pytest.approx(
        timedelta(minutes=10), abs=timedelta(seconds=5)
    )


def test_archive_json_prints_eventbridges_description(moto_stack: MotoStack, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a project event on the project bus (archived by the project archive)
    _put(moto_stack, load_event("model_version_registered.json"), bus=PROJECT_BUS)

    # WHEN the project archive is replayed with --json
    code = main(["archive", "--stack", STACK, "--archive", "project", "--from", "5m", "--json"])

    # THEN stdout is EventBridge's description of the finished replay
    out, err = capsys.readouterr()
    assert code == 0, err
    description = json.loads(out)
    assert description["State"] == "COMPLETED"
    assert description["ReplayName"].startswith(f"{STACK}-project-")
    assert description["Destination"] == {"Arn": f"arn:aws:events:{REGION}:123456789012:event-bus/{PROJECT_BUS}"}


def test_archive_refuses_a_window_older_than_the_archive_keeps_before_calling_aws(
    moto_stack: MotoStack, capsys
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN archives that keep events 7 days
    before = moto_stack.client("events").list_replays()["Replays"]

    # WHEN a replay from 30 days ago is asked for
    code = main(["archive", "--stack", STACK, "--from", "30d"])

    # THEN it is refused with the archive's retention, and no replay was started
    _, err = capsys.readouterr()
    assert code == 2
    assert f"is older than archive {STACK}-artifacts keeps events: it retains them 7 days" in err
    assert moto_stack.client("events").list_replays()["Replays"] == before


def test_archive_surfaces_eventbridges_own_refusal(moto_stack: MotoStack, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a replay name already used
    assert main(["archive", "--stack", STACK, "--from", "1m", "--name", "taken-name"]) == 0
    capsys.readouterr()

    # WHEN another replay is started under that name
    code = main(["archive", "--stack", STACK, "--from", "1m", "--name", "taken-name"])

    # THEN EventBridge's error is shown, with what was being done
    _, err = capsys.readouterr()
    assert code == 2
    assert "AWS refused to start replay 'taken-name'" in err
    assert "ResourceAlreadyExistsException" in err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--archive", "project", "--rule", "register"], "route 'register' listens on bus 'default'"),
        (["--rule", "no-such-rule"], "there is no rule 'no-such-rule' on bus 'default'"),
        (["--rule", f"arn:aws:events:{REGION}:123456789012:rule/{PROJECT_BUS}/x"], "is not on bus 'default'"),
        (["--to", "2h"], "must be after --from"),
    ],
)
def test_archive_refuses_rules_and_windows_it_cannot_replay(arguments, message, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a rule on another bus, an unknown rule, or a window that ends before it starts
    # WHEN a replay is asked for
    code = main(["archive", "--stack", STACK, "--from", "1h", *arguments])

    # THEN it is refused with the reason
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err


# --- send --------------------------------------------------------------------------------------------------


def test_send_re_sends_s3_events_under_the_replay_source_and_project_events_to_the_project_bus(
    moto_stack: MotoStack, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN an object in the stack's bucket, a recording of its upload made in another bucket, and a project event
    key = _key("sent")
    put = moto_stack.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"flavors: {}\n")
    (tmp_path / "upload.json").write_text(json.dumps(_s3_event(key, bucket="some-sandbox-bucket")))
    project_event = load_event("model_version_registered.json")
    (tmp_path / "registered.json").write_text(json.dumps(project_event))

    # WHEN both files are sent to the stack
    code = main(["send", "--stack", STACK, str(tmp_path / "upload.json"), str(tmp_path / "registered.json")])

    # THEN both were put, the S3 event on the default bus under the replay source
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "upload.json: sent as" in out
    assert f"source aws.s3 -> {REPLAY_SOURCE}" in out
    [sent] = [event for event in _drain(moto_stack, moto_stack.register_queue_url) if _object_key(event) == key]
    assert sent["source"] == REPLAY_SOURCE
    # AND rewritten to the stack's bucket and the object as the bucket holds it
    assert sent["detail"]["bucket"]["name"] == BUCKET
    assert sent["detail"]["object"]["version-id"] == put["VersionId"]
    assert sent["detail"]["object"]["etag"] == put["ETag"].strip('"')
    assert sent["detail"]["object"]["size"] == len(b"flavors: {}\n")
    # AND the project event reached the project bus unchanged
    received = _drain(moto_stack, moto_stack.project_queue_url)
    assert project_event["detail"] in [event["detail"] for event in received]


def test_send_refuses_events_it_cannot_send_and_says_so(moto_stack: MotoStack, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN an EC2 event next to an S3 event
    key = _key("mixed")
    ec2 = {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {"state": "stopped"}}
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([ec2, _s3_event(key)]))

    # WHEN they are sent
    code = main(["send", "--stack", STACK, str(path)])

    # THEN the EC2 event is refused and named, the S3 event is sent, and the exit status says not everything went
    out, _ = capsys.readouterr()
    assert code == 1
    assert f"{path}: NOT sent: aws.ec2 events cannot be sent" in out
    assert f"{path}#1: sent as" in out
    assert [_object_key(e) for e in _drain(moto_stack, moto_stack.register_queue_url)].count(key) == 1


# --- record ------------------------------------------------------------------------------------------------


def test_record_downloads_the_recorded_events_and_their_objects(moto_stack: MotoStack, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN an upload's S3 event and a project event, recorded by the recorder, and the uploaded object
    key = _key("recorded")
    put = moto_stack.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"flavors: {python_function: {}}\n")
    upload = _s3_event(key)
    upload["detail"]["object"]["version-id"] = put["VersionId"]
    _put(moto_stack, upload)
    registered = load_event("model_version_registered.json")
    registered["detail"]["model_name"] = key.split("/")[1]
    _put(moto_stack, registered, bus=PROJECT_BUS)

    # WHEN the last ten minutes are recorded, with the objects
    out_dir, seed = tmp_path / "recorded", tmp_path / "seed"
    code = main(["record", "--stack", STACK, "--since", "10m", str(out_dir), "--seed", str(seed)])

    # THEN both events are files `replay local` reads, named in time order
    out, err = capsys.readouterr()
    assert code == 0, err
    files = sorted(out_dir.glob("*.json"))
    events = [recorded.event for path in files for recorded in load_recording(path)]
    assert upload["detail"] in [event["detail"] for event in events]
    assert registered["detail"] in [event["detail"] for event in events]
    assert all(path.name[:16].endswith("Z") for path in files)
    assert f"wrote {len(files)} event files to {out_dir}" in out
    assert f"replay them: python -m replay local --seed {seed} {out_dir}" in out
    # AND the object the upload event names is in the seed, at its key
    assert (seed / key).read_bytes() == b"flavors: {python_function: {}}\n"


def test_record_pages_through_the_log_group_and_skips_what_is_not_an_event(
    moto_stack: MotoStack, tmp_path: Path
) -> None:
    # GIVEN three recorded events and a log line that is not an event
    for _ in range(3):
        _put(moto_stack, _s3_event(_key("paged")))
    moto_stack.client("logs").create_log_stream(logGroupName=moto_stack.log_group, logStreamName="stray")
    moto_stack.client("logs").put_log_events(
        logGroupName=moto_stack.log_group,
        logStreamName="stray",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "not an event"}],
    )
    stack = open_stack(STACK)
    messages: list[str] = []

    # WHEN they are downloaded one log event per page
    now = datetime.now(UTC)
    result = recorder.download(
        stack, tmp_path / "out", start=now - timedelta(minutes=10), end=now, page_size=1, progress=messages.append
    )

    # THEN every page was read, every event written, and the stray line reported with where it is
    total = len(result.files) + len(result.skipped)
    assert f"page {total}: {total} recorded events so far" in messages
    assert len(result.files) >= 3
    assert [
        reason for reason in result.skipped if "log stream stray" in reason and "not an EventBridge event" in reason
    ]


def test_record_never_writes_an_object_outside_the_seed_folder(moto_stack: MotoStack, tmp_path: Path) -> None:
    # GIVEN a recorded S3 event whose key climbs out of its folder
    key = "models/../../../escaped/MLmodel"
    moto_stack.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"x")
    _put(moto_stack, _s3_event(key))
    now = datetime.now(UTC)

    # WHEN the recording is downloaded with its objects
    seed = tmp_path / "nested" / "seed"
    result = recorder.download(
        open_stack(STACK), tmp_path / "out", start=now - timedelta(minutes=10), end=now, seed_dir=seed
    )

    # THEN the object is refused with the reason, and nothing was written outside the seed folder
    assert [reason for reason in result.objects_skipped if key in reason and "'..' path segment" in reason]
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "nested" / "escaped").exists()


# --- what every command needs: credentials, the stack, its outputs ------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["archive", "--from", "1h"], ["send", "events.json"], ["record", "out"]],
    ids=["archive", "send", "record"],
)
def test_without_credentials_every_command_says_so(command, monkeypatch, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN no credentials anywhere (environment, files, instance metadata)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "events.json").write_text(json.dumps(_s3_event(_key("nocreds"))))

    # WHEN a command is run
    code = main([command[0], "--stack", STACK, *command[1:]])

    # THEN it stops with a clear message
    _, err = capsys.readouterr()
    assert code == 2
    assert "replay: error: no AWS credentials found, so cannot read CloudFormation stack" in err
    assert "aws configure" in err


@pytest.mark.parametrize(
    "command",
    [["archive", "--from", "1h"], ["send", "events.json"], ["record", "out"]],
    ids=["archive", "send", "record"],
)
def test_a_wrong_stack_name_is_named(command, monkeypatch, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a stack name that does not exist in the region
    monkeypatch.chdir(tmp_path)
    (tmp_path / "events.json").write_text(json.dumps(_s3_event(_key("nostack"))))

    # WHEN a command is run against it
    code = main([command[0], "--stack", "RegistryAutopilotTypo", *command[1:]])

    # THEN it says there is no such stack in that region, and what to check
    _, err = capsys.readouterr()
    assert code == 2
    assert f"there is no CloudFormation stack named 'RegistryAutopilotTypo' in {REGION}" in err
    assert "--region" in err


def test_without_a_region_the_command_asks_for_one(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN credentials but no region (no AWS_REGION, AWS_DEFAULT_REGION or config file)
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    # WHEN a command is run
    code = main(["record", "--stack", STACK, "out"])

    # THEN it asks for --region
    _, err = capsys.readouterr()
    assert code == 2
    assert "no AWS region: pass --region or set AWS_REGION" in err


def test_a_stack_without_the_replay_outputs_asks_for_a_redeploy(capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a stack deployed before the recorder existed (or with recorder=false, the default)
    # WHEN its recording is asked for
    code = main(["record", "--stack", "RegistryAutopilotOld", "out"])

    # THEN the missing output is named, with the fix
    _, err = capsys.readouterr()
    assert code == 2
    assert "has no output 'RecorderLogGroupName'" in err
    assert "deploy this version with -c recorder=true" in err


def _object_key(event: dict) -> str | None:
    return ((event.get("detail") or {}).get("object") or {}).get("key")
