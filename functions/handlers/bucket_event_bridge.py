"""Custom resource: an existing bucket's EventBridge delivery turned on, its other notifications kept.

Used only with `-c artifactBucketEventBridge=enable` (stacks/constructs/artifact_bucket.py). Create and Update turn
EventBridge on with Get-then-Put of the whole configuration (`functions.adapters.bucket_notifications`); Delete
leaves the bucket as it is, EventBridge on included: other consumers may rely on it by then, and the switch alone
costs nothing (S3 charges EventBridge per event matched by a rule). Nothing the stack did is undone by writing the
configuration again, so no notification of anyone else's can be lost on `cdk destroy`.

The function answers CloudFormation itself (the pre-signed ResponseURL), so it needs no provider framework.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.adapters.aws import client
from functions.adapters.bucket_notifications import enable_event_bridge
from functions.observability import logger

RESPONSE_TIMEOUT_SECONDS = 10


class BucketProperties(BaseModel):
    model_config = ConfigDict(extra="ignore")
    bucket_name: str = Field(alias="BucketName", min_length=3)


class CustomResourceRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    request_type: Literal["Create", "Update", "Delete"] = Field(alias="RequestType")
    response_url: str = Field(alias="ResponseURL", pattern=r"^https://")
    stack_id: str = Field(alias="StackId")
    request_id: str = Field(alias="RequestId")
    logical_resource_id: str = Field(alias="LogicalResourceId")
    physical_resource_id: str | None = Field(default=None, alias="PhysicalResourceId")
    properties: BucketProperties = Field(alias="ResourceProperties")


def apply(request: CustomResourceRequest, s3: Any) -> str:
    """Do what the request asks; returns a one-line account of it."""
    bucket = request.properties.bucket_name
    if request.request_type == "Delete":
        return f"left the notification configuration of {bucket} as it is (EventBridge stays on)"
    if enable_event_bridge(s3, bucket):
        return f"turned EventBridge notifications on for {bucket}, every other notification kept"
    return f"EventBridge notifications were already on for {bucket}; nothing written"


def lambda_handler(
    event: dict[str, Any],
    context: Any,
    s3: Any = None,
    send: Callable[[str, bytes], None] | None = None,
) -> None:
    """`s3` and `send` (url, body) stand in for the S3 client and the reply to CloudFormation in tests."""
    reply = send or put_response
    try:
        request = CustomResourceRequest.model_validate(event)
    except ValidationError as error:
        # A request CloudFormation cannot be answered for would hold the stack for an hour: answer FAILED to the
        # raw ResponseURL when there is one that is https, and raise either way so the failure is on record.
        logger.exception("refused a malformed custom resource request", extra={"fields": _field_names(event)})
        url = event.get("ResponseURL") if isinstance(event, dict) else None
        if isinstance(url, str) and url.startswith("https://"):
            reply(url, malformed_response_body(event, reason=f"malformed request: {error.error_count()} errors"))
        raise
    status, reason = "SUCCESS", ""
    try:
        reason = apply(request, s3 or client("s3"))
        logger.info(reason)
    except Exception as error:  # noqa: BLE001 - CloudFormation must hear of any failure, or it waits for an hour
        status, reason = "FAILED", f"{type(error).__name__}: {error}"[:1000]
        logger.exception("could not apply the bucket's EventBridge setting")
    reply(request.response_url, response_body(request, status=status, reason=reason))


def _field_names(event: Any) -> list[str]:
    return sorted(str(key) for key in event) if isinstance(event, dict) else [type(event).__name__]


def malformed_response_body(event: dict[str, Any], *, reason: str) -> bytes:
    """FAILED for a request that did not parse, echoing whichever identifiers it carried as strings."""

    def text(key: str) -> str:
        value = event.get(key)
        return value if isinstance(value, str) else ""

    return json.dumps(
        {
            "Status": "FAILED",
            "Reason": reason,
            "PhysicalResourceId": text("PhysicalResourceId") or "bucket-eventbridge-not-created",
            "StackId": text("StackId"),
            "RequestId": text("RequestId"),
            "LogicalResourceId": text("LogicalResourceId"),
        }
    ).encode()


def response_body(request: CustomResourceRequest, *, status: str, reason: str) -> bytes:
    return json.dumps(
        {
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": f"{request.properties.bucket_name}-eventbridge",
            "StackId": request.stack_id,
            "RequestId": request.request_id,
            "LogicalResourceId": request.logical_resource_id,
        }
    ).encode()


def put_response(url: str, body: bytes) -> None:
    put = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
    # The URL is CloudFormation's pre-signed S3 URL; the request model refuses anything but https.
    with urllib.request.urlopen(put, timeout=RESPONSE_TIMEOUT_SECONDS):  # nosec B310
        pass
