"""The sandbox's function URL: HTTP requests as Lambda's payload-format 2.0 events, and answers back."""

from __future__ import annotations

import base64

from aws_lambda_powertools.utilities.data_classes import LambdaFunctionUrlEvent

from sandbox.function_url import function_url_event, http_response


def test_a_json_request_becomes_a_function_url_event_powertools_reads():
    # GIVEN a JSON POST as the sandbox's HTTP server received it
    body = b'{"entity": "model_version"}'

    # WHEN it becomes a Lambda event
    event = function_url_event(
        method="POST",
        path="/",
        query="",
        headers={"content-type": "application/json", "x-mlflow-signature": "v1,abc"},
        body=body,
        source_ip="127.0.0.1",
        url_id="abc123",
    )

    # THEN Powertools reads it like a real function URL event: method, source IP, headers, text body
    parsed = LambdaFunctionUrlEvent(event)
    assert parsed.request_context.http.method == "POST"
    assert parsed.request_context.http.source_ip == "127.0.0.1"
    assert parsed.headers["x-mlflow-signature"] == "v1,abc"
    assert parsed.is_base64_encoded is False
    assert parsed.body == body.decode()


def test_a_binary_request_is_base64_encoded_as_lambda_does():
    # GIVEN a request whose body is not text
    body = bytes(range(256))

    # WHEN it becomes a Lambda event
    event = function_url_event(
        method="POST", path="/", query="", headers={}, body=body, source_ip="127.0.0.1", url_id="abc123"
    )

    # THEN the body is base64 and flagged so
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_handler_answers_become_http_responses():
    # GIVEN a structured answer, a base64 answer, and a bare value
    structured = {"statusCode": 401, "headers": {"Content-Type": "application/json"}, "body": '{"status": "refused"}'}
    binary = {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}

    # WHEN they are turned into HTTP responses
    # THEN status, headers and body follow Lambda's rules (a bare value is a 200 with its JSON)
    assert http_response(structured) == (401, {"Content-Type": "application/json"}, b'{"status": "refused"}')
    assert http_response(binary) == (200, {}, b"\x00\x01")
    assert http_response({"ok": True}) == (200, {"Content-Type": "application/json"}, b'{"ok": true}')
