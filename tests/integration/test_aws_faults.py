"""The adapters' real boto3 clients against AWS faults injected at the HTTP boundary (`reliability.faults`).

A `CountingProxy` with a `FaultInjector` stands in front of the session sandbox's moto server; each test points
`AWS_ENDPOINT_URL` at it and builds the adapter as the functions do (`functions.adapters.aws.client`: standard retry
mode, 3 attempts). The injector counts what it answered itself, so each test also shows how many attempts botocore
made before the failure reached the adapter.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Iterator

import pytest

from functions.adapters import secrets
from functions.adapters.eventbridge import EventBridgePublisher
from functions.adapters.idempotency import IdempotentCall
from functions.adapters.s3_artifacts import S3ArtifactStore
from functions.adapters.sqs import QueueControl
from functions.domain.errors import Unavailable
from functions.models.events import ModelVersionRegistered
from reliability.faults import Fault, FaultInjector
from reliability.proxy import CountingProxy
from sandbox import Sandbox
from sandbox.processes import free_port

Inject = Callable[..., FaultInjector]


@pytest.fixture
def inject(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inject]:
    """`inject(Fault(...), ...)`: a fault proxy in front of moto, and AWS_ENDPOINT_URL pointed at it."""
    proxies: list[CountingProxy] = []

    def start(*faults: Fault) -> FaultInjector:
        injector = FaultInjector(list(faults))
        proxy = CountingProxy(sandbox.aws_port, intercept=injector).start()
        proxies.append(proxy)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        secrets._provider.cache_clear()  # its client is bound to the endpoint it was built with
        return injector

    yield start
    for proxy in proxies:
        proxy.stop()
    secrets._provider.cache_clear()


@pytest.fixture
def mlmodel_key(sandbox: Sandbox) -> str:
    # Not under models/: the session sandbox's register route ignores it.
    key = f"faults/{uuid.uuid4().hex}/MLmodel"
    sandbox.client("s3").put_object(Bucket=sandbox.bucket, Key=key, Body=b"flavors: {}\n")
    return key


def injected(injector: FaultInjector) -> dict[str, int]:
    return {name: counts["injected"] for name, counts in injector.report().items()}


# --- S3 ------------------------------------------------------------------------------------------------


def test_s3_slowdown_that_persists_is_a_throttled_artifact_store(inject: Inject, sandbox: Sandbox, mlmodel_key) -> None:
    # GIVEN S3 answering GetObject with 503 SlowDown three times running
    injector = inject(Fault("s3", "GetObject", "SlowDown", status=503, times=3))
    store = S3ArtifactStore()
    # WHEN the adapter reads the object
    with pytest.raises(Unavailable) as raised:
        store.read(sandbox.bucket, mlmodel_key, version_id=None, max_bytes=1000)
    # THEN botocore tried 3 times, and the failure names the dependency, the throttle and the AWS code
    assert injected(injector) == {"s3:GetObject:SlowDown": 3}
    assert raised.value.reason == "artifact_store_throttled"
    assert "SlowDown, HTTP 503" in raised.value.message
    # AND the next read, the fault gone, returns the object
    assert store.read(sandbox.bucket, mlmodel_key, version_id=None, max_bytes=1000) == b"flavors: {}\n"


def test_a_short_s3_throttle_is_absorbed_by_botocores_retries(inject: Inject, sandbox: Sandbox, mlmodel_key) -> None:
    # GIVEN two SlowDowns, fewer than the 3 attempts the clients make
    injector = inject(Fault("s3", "GetObject", "SlowDown", status=503, times=2))
    # WHEN the adapter reads the object THEN it gets it, on the third attempt
    assert S3ArtifactStore().read(sandbox.bucket, mlmodel_key, version_id=None, max_bytes=1000) == b"flavors: {}\n"
    assert injector.report()["s3:GetObject:SlowDown"] == {"seen": 3, "injected": 2}


def test_s3_internal_errors_on_listing_are_an_unavailable_artifact_store(inject: Inject, sandbox: Sandbox) -> None:
    injector = inject(Fault("s3", "ListObjectsV2", "InternalError", status=500, times=3))
    with pytest.raises(Unavailable) as raised:
        S3ArtifactStore().list_keys(sandbox.bucket, "faults/")
    assert injected(injector) == {"s3:ListObjectsV2:InternalError": 3}
    assert raised.value.reason == "artifact_store_unavailable"
    assert "InternalError, HTTP 500" in raised.value.message


def test_a_refused_connection_is_an_unavailable_artifact_store(monkeypatch: pytest.MonkeyPatch, sandbox) -> None:
    # GIVEN an endpoint where nothing listens
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Unavailable) as raised:
        S3ArtifactStore().read(sandbox.bucket, "faults/none/MLmodel", version_id=None, max_bytes=10)
    assert raised.value.reason == "artifact_store_unavailable"
    assert "EndpointConnectionError" in raised.value.message


def test_an_endpoint_that_never_answers_times_out_into_unavailable(monkeypatch: pytest.MonkeyPatch, sandbox) -> None:
    # GIVEN an endpoint that accepts connections (in its backlog) and never answers: a hung service
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{hung.getsockname()[1]}")
        # WHEN the adapter reads THEN the 5 s read timeout (× 3 attempts) turns it into a retryable failure
        with pytest.raises(Unavailable) as raised:
            S3ArtifactStore().read(sandbox.bucket, "faults/none/MLmodel", version_id=None, max_bytes=10)
    assert raised.value.reason == "artifact_store_unavailable"
    assert "ReadTimeoutError" in raised.value.message


# --- EventBridge ---------------------------------------------------------------------------------------


@pytest.fixture
def bus(sandbox: Sandbox) -> Iterator[tuple[str, str]]:
    """A bus of its own with a rule sending everything to a queue: (bus name, queue URL)."""
    name = f"faults-{uuid.uuid4().hex[:8]}"
    events, sqs = sandbox.client("events"), sandbox.client("sqs")
    events.create_event_bus(Name=name)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=name, EventPattern=json.dumps({"source": ["registry-autopilot"]}))
    events.put_targets(Rule=name, EventBusName=name, Targets=[{"Id": "queue", "Arn": arn}])
    yield name, queue_url
    events.remove_targets(Rule=name, EventBusName=name, Ids=["queue"])
    events.delete_rule(Name=name, EventBusName=name)
    events.delete_event_bus(Name=name)
    sqs.delete_queue(QueueUrl=queue_url)


def registered(version: str = "1") -> ModelVersionRegistered:
    return ModelVersionRegistered(
        model_name="faults", version=version, source_uri="s3://b/k", correlation_id=str(uuid.uuid4())
    )


def delivered(sandbox: Sandbox, queue_url: str) -> list[dict]:
    messages = sandbox.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@pytest.mark.parametrize(
    ("code", "reason"), [("ThrottlingException", "event_bus_throttled"), ("InternalFailure", "event_bus_unavailable")]
)
def test_a_put_events_entry_that_keeps_failing_is_not_taken_for_success(
    inject: Inject, sandbox: Sandbox, bus: tuple[str, str], code: str, reason: str
) -> None:
    # GIVEN PutEvents answering 200 with the entry failed (FailedEntryCount 1), three times running
    injector = inject(Fault("events", "PutEvents", code, times=3, partial=True))
    publisher = EventBridgePublisher(bus_name=bus[0], source="registry-autopilot")
    # WHEN the adapter publishes THEN it sent the entry 3 times and then failed, naming the entry's ErrorCode
    with pytest.raises(Unavailable) as raised:
        publisher.publish(registered())
    assert injected(injector) == {f"events:PutEvents:{code}:partial": 3}
    assert raised.value.reason == reason
    assert code in raised.value.message
    # AND nothing was published
    assert delivered(sandbox, bus[1]) == []


def test_a_failed_put_events_entry_is_sent_again_and_published_once(
    inject: Inject, sandbox: Sandbox, bus: tuple[str, str]
) -> None:
    # GIVEN PutEvents failing the entry twice (ThrottlingException in a 200 answer)
    injector = inject(Fault("events", "PutEvents", "ThrottlingException", times=2, partial=True))
    # WHEN the adapter publishes THEN the third call publishes it, and the bus delivers it once
    EventBridgePublisher(bus_name=bus[0], source="registry-autopilot").publish(registered("7"))
    assert injected(injector) == {"events:PutEvents:ThrottlingException:partial": 2}
    events = delivered(sandbox, bus[1])
    assert [(e["detail-type"], e["detail"]["version"]) for e in events] == [("Model Version Registered", "7")]


def test_a_put_events_entry_refused_for_good_is_not_sent_again(inject: Inject, bus: tuple[str, str]) -> None:
    injector = inject(Fault("events", "PutEvents", "AccessDeniedException", times=1, partial=True))
    with pytest.raises(Unavailable) as raised:
        EventBridgePublisher(bus_name=bus[0], source="registry-autopilot").publish(registered())
    assert injector.report()["events:PutEvents:AccessDeniedException:partial"] == {"seen": 1, "injected": 1}
    assert raised.value.reason == "event_bus_refused"


def test_put_events_throttled_as_a_whole_is_a_throttled_event_bus(inject: Inject, bus: tuple[str, str]) -> None:
    injector = inject(Fault("events", "PutEvents", "ThrottlingException", times=3))
    with pytest.raises(Unavailable) as raised:
        EventBridgePublisher(bus_name=bus[0], source="registry-autopilot").publish(registered())
    assert injected(injector) == {"events:PutEvents:ThrottlingException": 3}
    assert raised.value.reason == "event_bus_throttled"
    assert "ThrottlingException, HTTP 400" in raised.value.message


# --- DynamoDB (Powertools idempotency) -------------------------------------------------------------------


def idempotent(sandbox: Sandbox, runs: list[dict]) -> IdempotentCall:
    def work(payload: dict) -> dict:
        runs.append(payload)
        return {"status": "registered"}

    return IdempotentCall(
        work, table_name=sandbox.idempotency_table, ttl_seconds=60, key_prefix=f"faults-{uuid.uuid4().hex[:8]}"
    )


def test_a_throttled_in_progress_write_is_a_throttled_idempotency_store(inject: Inject, sandbox: Sandbox) -> None:
    # GIVEN DynamoDB throttling PutItem (Powertools' in-progress record) three times running
    injector = inject(Fault("dynamodb", "PutItem", "ProvisionedThroughputExceededException", times=3))
    runs: list[dict] = []
    once = idempotent(sandbox, runs)
    # WHEN the idempotent call runs THEN it fails as a throttled idempotency store, and the work did not run
    with pytest.raises(Unavailable) as raised:
        once({"identity": "upload-1"})
    assert injected(injector) == {"dynamodb:PutItem:ProvisionedThroughputExceededException": 3}
    assert raised.value.reason == "idempotency_store_throttled"
    assert "ProvisionedThroughputExceededException" in raised.value.message
    assert runs == []
    # AND the retry, the throttle over, runs the work once
    assert once({"identity": "upload-1"}) == {"status": "registered"}
    assert once({"identity": "upload-1"}) == {"status": "registered"}
    assert len(runs) == 1


def test_a_throttled_completion_fails_the_call_after_the_work_ran(inject: Inject, sandbox: Sandbox) -> None:
    # GIVEN DynamoDB throttling UpdateItem (marking the record complete), with ThrottlingException
    injector = inject(Fault("dynamodb", "UpdateItem", "ThrottlingException", times=3))
    runs: list[dict] = []
    once = idempotent(sandbox, runs)
    # WHEN the call runs THEN the work ran, but the call fails (retryable): it is never reported done unrecorded
    with pytest.raises(Unavailable) as raised:
        once({"identity": "upload-2"})
    assert injected(injector) == {"dynamodb:UpdateItem:ThrottlingException": 3}
    assert raised.value.reason == "idempotency_store_throttled"
    assert "Failed to update record state to success" in raised.value.message
    assert len(runs) == 1


# --- Secrets Manager -----------------------------------------------------------------------------------


@pytest.fixture
def secret(sandbox: Sandbox) -> Iterator[str]:
    name = f"faults-{uuid.uuid4().hex[:8]}"
    arn = sandbox.client("secretsmanager").create_secret(Name=name, SecretString='{"token": "t"}')["ARN"]
    yield arn
    sandbox.client("secretsmanager").delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def test_secrets_manager_unavailable_is_an_unavailable_secret_store(inject: Inject, secret: str) -> None:
    injector = inject(Fault("secretsmanager", "GetSecretValue", "ServiceUnavailable", status=503, times=3))
    with pytest.raises(Unavailable) as raised:
        secrets.read_secret(secret, force=True)
    assert injected(injector) == {"secretsmanager:GetSecretValue:ServiceUnavailable": 3}
    assert raised.value.reason == "secret_store_unavailable"
    assert "ServiceUnavailable, HTTP 503" in raised.value.message
    assert '"t"' not in raised.value.message
    assert secrets.read_secret(secret, force=True) == '{"token": "t"}'


def test_an_internal_service_error_with_status_400_is_unavailable_not_refused(inject: Inject, secret: str) -> None:
    # GIVEN Secrets Manager's InternalServiceError with the 400 its Common Errors page documents
    injector = inject(Fault("secretsmanager", "GetSecretValue", "InternalServiceError", status=400, times=1))
    # WHEN the secret is read THEN botocore does not retry a 400, and the adapter still calls it unavailable
    with pytest.raises(Unavailable) as raised:
        secrets.read_secret(secret, force=True)
    assert injector.report()["secretsmanager:GetSecretValue:InternalServiceError"] == {"seen": 1, "injected": 1}
    assert raised.value.reason == "secret_store_unavailable"


# --- SQS -----------------------------------------------------------------------------------------------


def test_a_dead_lettering_sqs_refuses_is_an_unavailable_queue(inject: Inject, sandbox: Sandbox) -> None:
    injector = inject(Fault("sqs", "SendMessage", "ServiceUnavailable", status=503, times=3))
    wiring = sandbox.wiring["register"]
    queue = QueueControl(queue_url=wiring.queue_url, dead_letter_queue_url=wiring.dead_letter_queue_url)
    with pytest.raises(Unavailable) as raised:
        queue.dead_letter("{}", attributes={"reason": "faults"})
    assert injected(injector) == {"sqs:SendMessage:ServiceUnavailable": 3}
    assert raised.value.reason == "queue_unavailable"
