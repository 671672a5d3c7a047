"""Which pipeline a command talks to: a running sandbox (its `--json` line) or a deployed stack (opened as `replay`
opens one: `replay.aws_stack`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3

from functions.project import SANDBOX_REGION
from functions.routing import DEFAULT_ARTIFACT_ROOT_PREFIX, ROUTES
from replay.aws_stack import AwsProblem, DeployedStack, calling, error_code, open_stack
from stacks.outputs import ARTIFACT_ROOT_URI, BUCKET_NAME, EVENT_BUS_NAME, dead_letter_queue_url, queue_url


class TargetError(RuntimeError):
    """The target cannot be reached or described; the message says what to do."""


@dataclass(frozen=True)
class Target:
    event_bus: str
    tracking_uri: str | None
    endpoint_url: str | None = None
    region: str | None = None
    queues: dict[str, dict[str, str]] | None = None
    """route name → {"queue_url", "dead_letter_queue_url"} (for `redrive`)."""
    stack: DeployedStack | None = None
    """The deployed stack, when the target is one: its clients use the session that found it."""
    bucket: str | None = None
    """The artifact bucket (for `backfill`)."""
    artifact_root_prefix: str = DEFAULT_ARTIFACT_ROOT_PREFIX
    """Where MLflow's own layouts live in the bucket (`s3://<bucket>/<prefix>/`)."""

    def client(self, service: str) -> Any:
        if self.stack is not None:
            return self.stack.client(service)
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region)


def from_sandbox(description: str) -> Target:
    """`description` is the `python -m sandbox --json` line, or a file holding it."""
    text = Path(description).read_text() if Path(description).is_file() else description
    try:
        info = json.loads(text)
        target = Target(
            event_bus=info["event_bus"],
            tracking_uri=info["mlflow_tracking_uri"],
            endpoint_url=info["aws_endpoint_url"],
            region=info.get("region", SANDBOX_REGION),
            queues=info.get("queues") or {},
            bucket=info.get("bucket"),
            artifact_root_prefix=info.get("artifact_root_prefix") or DEFAULT_ARTIFACT_ROOT_PREFIX,
        )
    except (ValueError, KeyError, TypeError) as error:
        raise TargetError(f"--sandbox wants the JSON line of `python -m sandbox --json`: {error}") from None
    # The sandbox's emulator accepts any credentials; never borrow real ones for it.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    return target


def from_stack(stack_name: str, *, region: str | None = None) -> Target:
    """The stack's bus from its CloudFormation outputs (`replay.aws_stack.open_stack`, as for `replay`); MLflow from
    MLFLOW_TRACKING_URI (as for any client)."""
    try:
        stack = open_stack(stack_name, region=region)
        event_bus = stack.output(EVENT_BUS_NAME)
    except AwsProblem as problem:
        raise TargetError(f"stack {stack_name!r}: {problem}") from None
    outputs = stack.outputs
    return Target(
        event_bus=event_bus,
        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"),
        region=stack.region,
        queues={
            route.name: {
                "queue_url": outputs[queue_url(route.name)],
                "dead_letter_queue_url": outputs[dead_letter_queue_url(route.name)],
            }
            for route in ROUTES
            if queue_url(route.name) in outputs and dead_letter_queue_url(route.name) in outputs
        },
        stack=stack,
        bucket=outputs.get(BUCKET_NAME),
        artifact_root_prefix=_root_prefix(outputs.get(ARTIFACT_ROOT_URI), outputs.get(BUCKET_NAME)),
    )


def _root_prefix(root_uri: str | None, bucket: str | None) -> str:
    """`mlflow` from the stack's `s3://<bucket>/mlflow` output."""
    if not root_uri or not bucket or not root_uri.startswith(f"s3://{bucket}/"):
        return DEFAULT_ARTIFACT_ROOT_PREFIX
    return root_uri[len(f"s3://{bucket}/") :].strip("/") or DEFAULT_ARTIFACT_ROOT_PREFIX


@dataclass(frozen=True)
class ListedObject:
    """One object of a ListObjectsV2 page, or one current-version row of an S3 Inventory report."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    version_id: str | None = None
    """Only an inventory that lists all versions gives it; the plan takes the version from HeadObject either way."""


@dataclass(frozen=True)
class HeadedObject:
    """The current version of one object, as HeadObject reads it."""

    key: str
    size: int
    etag: str
    version_id: str | None
    last_modified: datetime


def list_objects(target: Target, bucket: str, prefix: str) -> Iterator[ListedObject]:
    """Every object under `prefix`, page by page (ListObjectsV2: 1,000 keys a request)."""
    paginator = target.client("s3").get_paginator("list_objects_v2")
    try:
        with calling(f"list s3://{bucket}/{prefix}"):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ListedObject(item["Key"], int(item["Size"]), item["ETag"], item["LastModified"])
    except AwsProblem as problem:
        if error_code(problem) == "NoSuchBucket":
            raise TargetError(f"bucket {bucket!r} does not exist (NoSuchBucket)") from None
        raise TargetError(str(problem)) from None


def read_object(target: Target, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes:
    """The object's bytes (GetObject); `TargetError` when it is missing or larger than `max_bytes`."""
    try:
        with calling(f"read s3://{bucket}/{key}"):
            found = target.client("s3").get_object(Bucket=bucket, Key=key)
            if max_bytes is not None and int(found["ContentLength"]) > max_bytes:
                found["Body"].close()
                raise TargetError(f"s3://{bucket}/{key} is {found['ContentLength']} bytes, over the cap of {max_bytes}")
            body: bytes = found["Body"].read()
            return body
    except AwsProblem as problem:
        if error_code(problem) in ("NoSuchKey", "404", "NotFound"):
            raise TargetError(f"s3://{bucket}/{key} does not exist (NoSuchKey)") from None
        if error_code(problem) == "NoSuchBucket":
            raise TargetError(f"bucket {bucket!r} does not exist (NoSuchBucket)") from None
        raise TargetError(str(problem)) from None


def inventory_objects(
    target: Target, manifest_uri: str, bucket: str, prefixes: Iterable[str]
) -> Iterator[ListedObject]:
    """The objects an S3 Inventory report lists for `bucket` under `prefixes`, instead of ListObjectsV2: its
    manifest read and checked, then each data file read, checked against the manifest's MD5 and parsed
    (`ops.inventory`). Every refusal is a `TargetError` naming the manifest or data file."""
    from ops import inventory

    prefixes = tuple(prefixes)
    try:
        manifest_bucket, manifest_key = inventory.split_s3_uri(manifest_uri)
        body = read_object(target, manifest_bucket, manifest_key, max_bytes=inventory.MAX_MANIFEST_BYTES)
        manifest = inventory.parse_manifest(body, uri=manifest_uri, bucket=bucket, manifest_bucket=manifest_bucket)
        for data_file in manifest.files:
            data = read_object(target, manifest.destination_bucket, data_file.key)
            inventory.check_data_file(data_file, data, bucket=manifest.destination_bucket)
            data_uri = f"s3://{manifest.destination_bucket}/{data_file.key}"
            yield from inventory.listed_objects(manifest, data, data_key=data_uri, prefixes=prefixes)
    except inventory.InventoryError as error:
        raise TargetError(str(error)) from None


HEAD_WORKERS = 16
"""HeadObject requests in flight at once while planning a backfill (S3 serves thousands a second per prefix)."""


def head_objects(target: Target, bucket: str, keys: Iterable[str]) -> dict[str, HeadedObject | None]:
    """Each object's current version (None when it is gone), `HEAD_WORKERS` at a time through one client."""
    client = target.client("s3")  # boto3 clients are thread-safe; creating one per request costs more than the call
    keys = list(keys)
    with ThreadPoolExecutor(max_workers=HEAD_WORKERS) as pool:
        return dict(zip(keys, pool.map(lambda key: head_object(target, bucket, key, client=client), keys), strict=True))


def head_object(target: Target, bucket: str, key: str, *, client: Any = None) -> HeadedObject | None:
    """The object's current version, or None when it is gone."""
    try:
        with calling(f"read s3://{bucket}/{key}"):
            found = (client or target.client("s3")).head_object(Bucket=bucket, Key=key)
    except AwsProblem as problem:
        if error_code(problem) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise TargetError(str(problem)) from None
    version = found.get("VersionId")
    return HeadedObject(
        key=key,
        size=int(found["ContentLength"]),
        etag=found["ETag"],
        version_id=None if version in (None, "", "null") else version,
        last_modified=found["LastModified"],
    )
