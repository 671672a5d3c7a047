"""A replayed event through the real pipeline: `python -m replay archive` on the sandbox's moto, then the register
worker tags what it registers with the replay's name.

The story: an upload's MLmodel arrived, its weights did not within `maxPendingHours`, so its event was dead-lettered.
The weights arrive later; an operator replays the archive window to the register rule, and the model is registered,
tagged `origin.replay_name`. The sandbox has no archives and no CloudFormation stack, so the test adds both to its
moto server: an archive of this test's S3 events on the default bus, and a stack whose outputs name the sandbox's
bucket, bus, rule and that archive. moto does not archive S3's own events, so the upload's event is put with PutEvents
(as `aws.s3`, which moto accepts), the way the other archive tests do.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions.domain.tags import origin_tag
from functions.routing import REGISTER
from replay.__main__ import main
from sandbox import REGION, Sandbox
from stacks import outputs

pytestmark = pytest.mark.slow

REGISTERED = "Model Version Registered"


def _s3_event(sandbox: Sandbox, key: str, *, time: datetime) -> dict:
    head = sandbox.client("s3").head_object(Bucket=sandbox.bucket, Key=key)
    return {
        "Source": "aws.s3",
        "DetailType": "Object Created",
        "Time": time,
        "Resources": [f"arn:aws:s3:::{sandbox.bucket}"],
        "EventBusName": "default",
        "Detail": json.dumps(
            {
                "version": "0",
                "bucket": {"name": sandbox.bucket},
                "object": {
                    "key": key,
                    "size": head["ContentLength"],
                    "etag": head["ETag"].strip('"'),
                    "version-id": head["VersionId"],
                    "sequencer": "00617F08299329D189",
                },
                "reason": "PutObject",
            }
        ),
    }


def test_a_dead_lettered_upload_replayed_from_the_archive_is_registered_and_tagged_with_the_replay(
    sandbox: Sandbox,
    model_name: str,
    sklearn_model_dir: Path,
    mlflow_client,
    wait_quiet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN an archive of this model's S3 events on the sandbox's default bus, and a stack naming the sandbox
    events, prefix = sandbox.client("events"), f"models/{model_name}/1/"
    archive = f"test-{uuid.uuid4().hex[:12]}"
    events.create_archive(
        ArchiveName=archive,
        EventSourceArn=events.describe_event_bus(Name="default")["Arn"],
        EventPattern=json.dumps({"source": ["aws.s3"], "detail": {"object": {"key": [{"prefix": prefix}]}}}),
        RetentionDays=1,
    )
    register_rule = events.describe_rule(Name=sandbox.wiring[REGISTER.name].rule_name)["Arn"]
    stack = f"Sandbox{uuid.uuid4().hex[:8]}"
    stack_outputs = {
        outputs.BUCKET_NAME: sandbox.bucket,
        outputs.EVENT_BUS_NAME: sandbox.event_bus,
        outputs.ARTIFACT_EVENTS_ARCHIVE_NAME: archive,
        outputs.rule_arn(REGISTER.name): register_rule,
    }
    sandbox.client("cloudformation").create_stack(
        StackName=stack,
        TemplateBody=json.dumps(
            {
                "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {key: {"Value": value} for key, value in stack_outputs.items()},
            }
        ),
    )
    # AND an MLmodel whose weights were missing for longer than maxPendingHours, so its event was dead-lettered
    only_mlmodel = tmp_path / "only-mlmodel"
    only_mlmodel.mkdir()
    shutil.copy(sklearn_model_dir / "MLmodel", only_mlmodel / "MLmodel")
    sandbox.upload_dir(only_mlmodel, prefix, notify=False)
    uploaded = datetime.now(UTC) - timedelta(hours=7)
    assert events.put_events(Entries=[_s3_event(sandbox, f"{prefix}MLmodel", time=uploaded)])["FailedEntryCount"] == 0
    wait_quiet(timeout=60)
    assert [d.reason for d in sandbox.dlq_messages(REGISTER.name) if d.key == f"{prefix}MLmodel"] == [
        "incomplete_upload"
    ]
    assert mlflow_client.search_model_versions(f"name='{model_name}'") == []
    # AND the weights have arrived since
    sandbox.upload_dir(sklearn_model_dir, prefix, notify=False)

    # WHEN the archive window is replayed to the register rule with `python -m replay archive`
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    code = main(["archive", "--stack", stack, "--from", "8h", "--rule", REGISTER.name, "--name", f"{archive}-replay"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"replay {archive}-replay COMPLETED")
    wait_quiet(timeout=60)

    # THEN the model is registered from the replayed event, and the version says which replay it came from
    [version] = mlflow_client.search_model_versions(f"name='{model_name}'")
    assert version.tags[origin_tag("replay_name")] == f"{archive}-replay"
    assert version.tags[origin_tag("key")] == f"{prefix}MLmodel"
    # AND so does the event announcing it
    [event] = sandbox.wait_for_events(REGISTERED, model_name=model_name, timeout=30)
    assert event["detail"]["replay_name"] == f"{archive}-replay"
    # AND the handler logged the replay's name with the registration
    registered_lines = [
        line
        for line in sandbox.worker_log_lines([REGISTER.name])
        if line.get("message") == "model version registered" and line.get("key") == f"{prefix}MLmodel"
    ]
    assert [line.get("replay_name") for line in registered_lines] == [f"{archive}-replay"]
