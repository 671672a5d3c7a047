"""Provisioning the local twin of the stack on moto: what the CDK stack builds on AWS, from `functions.routing`.

The artifact bucket (versioned, sending its events to EventBridge), the project bus, the idempotency table, the
webhook's secret, and per route a queue with its dead-letter queue and a rule that feeds it; an extra "observer"
queue receives every event the project emits, so tools and tests can see them.

A FIFO route (`route.fifo_group`) gets FIFO queues as on AWS: `<name>.fifo` and `<name>-dlq.fifo`, both with
content-based deduplication (moto, like EventBridge, drops events sent to a FIFO queue without it), and a rule
target that puts every event into the route's message group. (On AWS the rule target also has a standard
dead-letter queue for undeliverable events; moto delivers or drops, so there is none.)
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from functions.project import FIFO_SUFFIX, PROJECT
from functions.routing import MLMODEL_FILE, Bus, Route, project_archive_pattern
from sandbox.environment import DUMMY_CREDENTIALS, REGION
from sandbox.processes import SandboxError

NAME_PREFIX = PROJECT
DEFAULT_BUCKET = f"{NAME_PREFIX}-artifacts"
PROJECT_BUS = NAME_PREFIX
IDEMPOTENCY_TABLE = f"{NAME_PREFIX}-idempotency"
OBSERVER_QUEUE = f"{NAME_PREFIX}-observer"
WEBHOOK_SECRET = f"{NAME_PREFIX}-webhook"


@dataclass(frozen=True)
class RouteWiring:
    """What the sandbox created for one route."""

    route: Route
    bus_name: str
    rule_name: str
    queue_url: str
    dead_letter_queue_url: str

    @property
    def fifo(self) -> bool:
        return self.queue_url.endswith(FIFO_SUFFIX)


class Provisioning:
    """The sandbox's AWS side: clients on moto, the resources of the stack, the bucket."""

    bucket: str
    event_bus: str
    idempotency_table: str
    routes: tuple[Route, ...]
    wiring: dict[str, RouteWiring]
    observer_queue_url: str | None
    _visibility_timeout: int | None
    _clients: dict[str, Any]
    aws_endpoint_url: str
    """Provided by the sandbox (moto's endpoint)."""
    existing_objects: Path | None = None
    """A directory whose files are in the bucket before the pipeline starts (no events for them)."""
    bucket_event_bridge: bool = True
    """False: the bucket starts with EventBridge notifications off, as an existing bucket may."""

    def client(self, service: str) -> Any:
        """A boto3 client for `service` on this sandbox's moto server (cached per service)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.aws_endpoint_url,
                region_name=REGION,
                aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30),
            )
        return self._clients[service]

    def put_object(self, key: str, body: bytes | str, **extra: Any) -> dict:
        """Write one object into the artifact bucket; returns S3's answer (ETag, VersionId)."""
        data = body.encode() if isinstance(body, str) else body
        return self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    def upload_dir(self, local_dir: str | Path, key_prefix: str = "", *, notify: bool = True) -> list[str]:
        """Upload every file under `local_dir` to `<key_prefix><relative path>`; returns the keys.

        `MLmodel` files go last, as a careful uploader would send them, so a model is complete when its
        event fires. With `notify=False` the bucket's EventBridge notifications are paused meanwhile
        (seeding objects that recorded events will refer to, without triggering the pipeline).
        """
        root = Path(local_dir)
        if not root.is_dir():
            raise SandboxError(f"{root} is not a directory")
        files = sorted(
            (p for p in root.rglob("*") if p.is_file()), key=lambda p: (p.name == MLMODEL_FILE, p.as_posix())
        )
        keys = []
        was_on = self.bucket_event_bridge_on()
        if not notify:
            self._set_bucket_notifications(enabled=False)
        try:
            for path in files:
                key = f"{key_prefix}{path.relative_to(root).as_posix()}"
                self.client("s3").upload_file(str(path), self.bucket, key)
                keys.append(key)
        finally:
            if not notify:
                self._set_bucket_notifications(enabled=was_on)
        return keys

    def bucket_event_bridge_on(self) -> bool:
        """Whether the bucket sends its events to EventBridge now (`sandbox.moto_server` reports the switch)."""
        return "EventBridgeConfiguration" in self.client("s3").get_bucket_notification_configuration(Bucket=self.bucket)

    def webhook_secret(self) -> str:
        """The HMAC secret the webhook function verifies with (in the sandbox's Secrets Manager)."""
        return self.client("secretsmanager").get_secret_value(SecretId=WEBHOOK_SECRET)["SecretString"]

    def _create_resources(self) -> None:
        s3, events, sqs, dynamodb = (self.client(name) for name in ("s3", "events", "sqs", "dynamodb"))
        s3.create_bucket(Bucket=self.bucket)
        s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        if self.existing_objects is not None:
            # An existing bucket's history: written before the pipeline exists, so no event announces it.
            self.upload_dir(self.existing_objects)
        self._set_bucket_notifications(enabled=self.bucket_event_bridge)
        events.create_event_bus(Name=self.event_bus)
        dynamodb.create_table(
            TableName=self.idempotency_table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=self.idempotency_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
        )
        for route in self.routes:
            self.wiring[route.name] = self._wire_route(route, events=events, sqs=sqs)
        self.observer_queue_url = sqs.create_queue(QueueName=OBSERVER_QUEUE)["QueueUrl"]
        self.client("secretsmanager").create_secret(Name=WEBHOOK_SECRET, SecretString=secrets.token_urlsafe(48))
        self._put_rule(
            events,
            name=OBSERVER_QUEUE,
            bus_name=self.event_bus,
            pattern=project_archive_pattern(),
            queue_url=self.observer_queue_url,
        )

    def _wire_route(self, route: Route, *, events: Any, sqs: Any) -> RouteWiring:
        name = f"{NAME_PREFIX}-{route.name}"
        suffix, fifo = (
            (FIFO_SUFFIX, {"FifoQueue": "true", "ContentBasedDeduplication": "true"}) if route.fifo else ("", {})
        )
        dead_letter_queue_url = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=fifo)["QueueUrl"]
        visibility = (
            self._visibility_timeout if self._visibility_timeout is not None else route.visibility_timeout_seconds
        )
        redrive = {
            "deadLetterTargetArn": self._queue_arn(dead_letter_queue_url),
            "maxReceiveCount": route.max_receive_count,
        }
        queue_url = sqs.create_queue(
            QueueName=f"{name}{suffix}",
            Attributes={**fifo, "VisibilityTimeout": str(visibility), "RedrivePolicy": json.dumps(redrive)},
        )["QueueUrl"]
        bus_name = "default" if route.bus is Bus.DEFAULT else self.event_bus
        self._put_rule(
            events,
            name=name,
            bus_name=bus_name,
            pattern=route.event_pattern(bucket_name=self.bucket),
            queue_url=queue_url,
            message_group_id=route.fifo_group,
        )
        return RouteWiring(route, bus_name, name, queue_url, dead_letter_queue_url)

    def _put_rule(
        self,
        events: Any,
        *,
        name: str,
        bus_name: str,
        pattern: dict,
        queue_url: str,
        message_group_id: str | None = None,
    ) -> None:
        events.put_rule(Name=name, EventBusName=bus_name, EventPattern=json.dumps(pattern), State="ENABLED")
        target: dict[str, Any] = {"Id": "queue", "Arn": self._queue_arn(queue_url)}
        if message_group_id:
            target["SqsParameters"] = {"MessageGroupId": message_group_id}
        events.put_targets(Rule=name, EventBusName=bus_name, Targets=[target])

    def _queue_arn(self, queue_url: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return attributes["Attributes"]["QueueArn"]

    def _set_bucket_notifications(self, *, enabled: bool) -> None:
        configuration = {"EventBridgeConfiguration": {}} if enabled else {}
        self.client("s3").put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration=configuration
        )
