"""A bucket in another account: its S3 events reach the register route through the forwarder, not the default bus.

The wiring is the stack's (`artifactBucketAccount`): the forwarder's rule (`s3_forward_pattern`: this bucket, `…/MLmodel`
under the watched prefixes) on the bucket account's default bus, targeting the project bus, where the register rule
(`receiving_forwarded_events`) feeds the register queue. Here a bus of the sandbox's moto stands in for the bucket
account's default bus; each test puts the S3 `Object Created` event on it as S3 would (moto takes `aws.s3` in PutEvents),
and moto delivers it bus to bus as EventBridge does. The objects are uploaded with the sandbox bucket's EventBridge
switch off (`upload_dir(notify=False)`), so the local route sees nothing and every delivery is a forwarded one.

EventBridge keeps the original event when it forwards bus to bus: `source` aws.s3, `detail-type`, `detail`, and
`account` = the sending (bucket) account ("Rules with an account field do not match any events sent from other
accounts", EventBridge PutPermission API reference, `Principal`). moto re-puts forwarded events in the receiving
account (moto/events/models.py, `Rule.send_to_targets`, "event-bus" target), so `account` reads the project's account
here; nothing on the register route reads `account` (its pattern and the handler match on source, detail-type,
bucket and key), so the behaviour tested does not depend on it.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from functions.routing import PLAIN_UPLOAD_PREFIX, receiving_forwarded_events, route, s3_forward_pattern
from replay.recordings import put_events_entry
from tests.integration.sandboxes import wait_for_log_line

BUCKET_ACCOUNT = "210987654321"
REGISTERED = "Model Version Registered"


def _queue_arn(sandbox, queue_url: str) -> str:  # type: ignore[no-untyped-def]
    attributes = sandbox.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def _rule(sandbox, *, name: str, bus: str, pattern: dict, target_arn: str) -> None:  # type: ignore[no-untyped-def]
    events = sandbox.client("events")
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "target", "Arn": target_arn}])


def _object_created(sandbox, key: str, *, bucket: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    """The `Object Created` event S3 puts on the default bus of the bucket's account for an object of the bucket."""
    head = sandbox.client("s3").head_object(Bucket=sandbox.bucket, Key=key)
    name = bucket or sandbox.bucket
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": BUCKET_ACCOUNT,
        "time": head["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{name}"],
        "detail": {
            "version": "0",
            "bucket": {"name": name},
            "object": {
                "key": key,
                "size": head["ContentLength"],
                "etag": head["ETag"].strip('"'),
                "version-id": head.get("VersionId"),
                "sequencer": "00617F08299329D189",
            },
            "request-id": "R1",
            "requester": BUCKET_ACCOUNT,
            "source-ip-address": "10.0.0.1",
            "reason": "PutObject",
        },
    }


@pytest.fixture
def forward(sandbox) -> Iterator[Callable[..., None]]:  # type: ignore[no-untyped-def]
    """`forward(key, bucket=None)`: S3 announces the object on the bucket account's bus; the forwarder delivers it."""
    events = sandbox.client("events")
    bucket_account_bus = f"bucket-account-default-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bucket_account_bus)
    project_bus_arn = events.describe_event_bus(Name=sandbox.event_bus)["Arn"]
    forwarder = f"{bucket_account_bus}-forwarder"
    register = f"{sandbox.event_bus}-forwarded-register-{uuid.uuid4().hex[:8]}"
    # The forwarder stack's rule, and the register rule as a stack with artifactBucketAccount puts it on the project bus
    prefixes = [PLAIN_UPLOAD_PREFIX, sandbox.artifact_root_prefix]
    _rule(
        sandbox,
        name=forwarder,
        bus=bucket_account_bus,
        pattern=s3_forward_pattern(sandbox.bucket, prefixes),
        target_arn=project_bus_arn,
    )
    register_route = receiving_forwarded_events(route("register"))
    _rule(
        sandbox,
        name=register,
        bus=sandbox.event_bus,
        pattern=register_route.event_pattern(bucket_name=sandbox.bucket),
        target_arn=_queue_arn(sandbox, sandbox.wiring["register"].queue_url),
    )

    def send(key: str, bucket: str | None = None) -> None:
        event = _object_created(sandbox, key, bucket=bucket)
        response = events.put_events(Entries=[put_events_entry(event, event_bus_name=bucket_account_bus)])
        assert response["FailedEntryCount"] == 0, response

    yield send
    for name, bus in ((register, sandbox.event_bus), (forwarder, bucket_account_bus)):
        events.remove_targets(Rule=name, EventBusName=bus, Ids=["target"])
        events.delete_rule(Name=name, EventBusName=bus)
    events.delete_event_bus(Name=bucket_account_bus)


def _versions(mlflow_client, model_name: str) -> list:  # type: ignore[no-untyped-def]
    return mlflow_client.search_model_versions(f"name='{model_name}'")


def _dead_letters(sandbox, model_name: str) -> list:  # type: ignore[no-untyped-def]
    return [letter for letter in sandbox.dlq_messages("register") if model_name in letter.body]


def _upload_quietly(sandbox, local_dir: Path, prefix: str) -> None:  # type: ignore[no-untyped-def]
    """Into the bucket without an event of its own (EventBridge off meanwhile): only the forwarder announces it."""
    sandbox.upload_dir(local_dir, prefix, notify=False)


def test_a_forwarded_upload_is_registered_once_even_delivered_twice(  # type: ignore[no-untyped-def]
    sandbox, mlflow_client, model_name, wait_quiet, sklearn_model_dir, forward
):
    # GIVEN a complete model in the bucket, not announced on the local default bus
    prefix = f"models/{model_name}/1/"
    _upload_quietly(sandbox, sklearn_model_dir, prefix)

    # WHEN its Object Created event comes through the forwarder
    forward(f"{prefix}MLmodel")
    wait_quiet(timeout=60)

    # THEN one version, from that object, announced once
    [version] = _versions(mlflow_client, model_name)
    assert version.source == f"s3://{sandbox.bucket}/{prefix.rstrip('/')}"
    assert len(sandbox.observed_events(REGISTERED, model_name=model_name)) == 1

    # WHEN the forwarder delivers the same upload again (EventBridge delivers at least once)
    forward(f"{prefix}MLmodel")
    wait_quiet(timeout=60)

    # THEN still one version and one announcement, nothing dead-lettered
    assert len(_versions(mlflow_client, model_name)) == 1
    assert len(sandbox.observed_events(REGISTERED, model_name=model_name)) == 1
    assert _dead_letters(sandbox, model_name) == []


def test_a_forwarded_mlmodel_before_its_weights_is_put_off_until_complete(  # type: ignore[no-untyped-def]
    sandbox, mlflow_client, model_name, wait_quiet, sklearn_model_dir, forward, tmp_path
):
    # GIVEN only the MLmodel of an upload is in the bucket, and its event comes through the forwarder
    prefix = f"models/{model_name}/1/"
    only_mlmodel = tmp_path / "only-mlmodel"
    only_mlmodel.mkdir()
    shutil.copy(sklearn_model_dir / "MLmodel", only_mlmodel / "MLmodel")
    _upload_quietly(sandbox, only_mlmodel, prefix)
    forward(f"{prefix}MLmodel")

    # WHEN the register worker has handled it
    deferral = wait_for_log_line(sandbox, message="not ready: re-enqueued", key=f"{prefix}MLmodel")

    # THEN it is put off as for a local bucket: nothing registered, nothing dead-lettered
    assert deferral["reason"] == "incomplete_upload"
    assert _versions(mlflow_client, model_name) == []
    assert _dead_letters(sandbox, model_name) == []

    # WHEN the rest of the model arrives (no event of its own: only the MLmodel's counts)
    rest = tmp_path / "rest"
    shutil.copytree(sklearn_model_dir, rest, ignore=shutil.ignore_patterns("MLmodel"))
    _upload_quietly(sandbox, rest, prefix)

    # THEN the deferred delivery comes back and registers exactly one version
    sandbox.wait_for_events(REGISTERED, model_name=model_name, timeout=120)
    wait_quiet(timeout=60)
    assert len(_versions(mlflow_client, model_name)) == 1


@pytest.mark.parametrize(
    ("where", "bucket"),
    [("models/{model}/1/", "someone-elses-bucket"), ("scratch/{model}/1/", None)],
    ids=["another-bucket", "outside-the-watched-prefixes"],
)
def test_a_forwarded_event_for_another_bucket_or_outside_the_prefixes_registers_nothing(  # type: ignore[no-untyped-def]
    sandbox, mlflow_client, model_name, wait_quiet, sklearn_model_dir, forward, where, bucket
):
    # GIVEN a complete model in the bucket, and an event naming another bucket, or a key outside models/ and mlflow/
    prefix = where.format(model=model_name)
    _upload_quietly(sandbox, sklearn_model_dir, prefix)

    # WHEN S3 announces it on the bucket account's bus
    forward(f"{prefix}MLmodel", bucket=bucket)
    wait_quiet(timeout=60)

    # THEN nothing is registered or announced, and nothing reaches the register route to be dead-lettered
    assert _versions(mlflow_client, model_name) == []
    assert sandbox.observed_events(REGISTERED, model_name=model_name) == []
    assert _dead_letters(sandbox, model_name) == []
    assert not [line for line in sandbox.worker_log_lines(["register"]) if line.get("key") == f"{prefix}MLmodel"]
