"""The bucket EventBridge custom resource answers CloudFormation even for a request it cannot parse.

An unanswered custom resource holds the stack for an hour before CloudFormation gives up, so a malformed request
is answered FAILED to its ResponseURL (when that is https) and the handler still raises, so the log has it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from functions.handlers.bucket_event_bridge import lambda_handler

URL = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/reply?X-Amz-Signature=x"


def _handle(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    replies: list[tuple[str, dict[str, Any]]] = []
    with pytest.raises(ValidationError):
        lambda_handler(event, None, s3=object(), send=lambda url, body: replies.append((url, json.loads(body))))
    return replies


def test_a_request_without_its_properties_is_answered_failed_with_its_identifiers() -> None:
    # GIVEN a Create request with no ResourceProperties
    event = {
        "RequestType": "Create",
        "ResponseURL": URL,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
        "RequestId": "r-1",
        "LogicalResourceId": "BucketEventBridge",
    }
    # WHEN it is handled  THEN CloudFormation hears FAILED, with the request's own identifiers
    ((url, body),) = _handle(event)
    assert url == URL
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("malformed request")
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
        "r-1",
        "BucketEventBridge",
    )
    assert body["PhysicalResourceId"]


def test_an_update_keeps_the_physical_id_it_was_given() -> None:
    event = {
        "RequestType": "Update",
        "ResponseURL": URL,
        "PhysicalResourceId": "b-eventbridge",
        "ResourceProperties": {},
    }
    ((_, body),) = _handle(event)
    assert body["PhysicalResourceId"] == "b-eventbridge"


@pytest.mark.parametrize("url", [None, "http://169.254.169.254/latest/meta-data", 42])
def test_a_response_url_that_is_not_https_is_never_called(url: Any) -> None:
    # GIVEN a malformed request whose ResponseURL is missing, plain http or not a string
    event = {"RequestType": "Create", "ResponseURL": url}
    # THEN nothing is sent anywhere, and the handler raises
    assert _handle(event) == []
