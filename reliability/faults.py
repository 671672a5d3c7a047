"""AWS faults at the HTTP boundary: a `CountingProxy` intercept that answers chosen requests with AWS's own errors.

The route workers use the proxy as their AWS endpoint (`Sandbox(functions_aws_endpoint_url=...)`); the sandbox's own
provisioning and inspection, and the workers' SQS polling (Lambda's event source mapping on AWS, which these faults
do not reach), talk to moto directly. So the functions' real boto3 clients, with their real retry settings and error
parsing, meet the faults, and nothing in the adapters is mocked.

A request is matched by service and operation:

- the service is the SigV4 signing name in the `Authorization` header (`Credential=<key>/<date>/<region>/<service>/
  aws4_request`), as every botocore request carries it;
- the operation is the `X-Amz-Target` header's part after the dot for the JSON protocols (DynamoDB
  `DynamoDB_20120810.PutItem`, EventBridge `AWSEvents.PutEvents`, Secrets Manager `secretsmanager.GetSecretValue`,
  SQS `AmazonSQS.SendMessage`), and for S3 (REST-XML) what the method and path say (`s3_operation`).

A `Fault` answers its first `times` matching requests (after letting `skip` through) with the error AWS sends:

- S3: the XML `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>...` with status 503
  (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html lists `SlowDown`, 503; the same page gives
  the `<Error>` body);
- JSON protocols: `{"__type": "<namespace>#<Code>", "message": ...}` with status 400 for a throttle, as DynamoDB
  documents its errors (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html:
  `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message":...}`, 400), or the status given
  (Secrets Manager's `ServiceUnavailable` is 503; its `InternalServiceError` is documented as 400:
  https://docs.aws.amazon.com/secretsmanager/latest/apireference/CommonErrors.html);
- EventBridge PutEvents with `partial=True`: status 200, `FailedEntryCount` and, for each faulted entry,
  `{"ErrorCode": ..., "ErrorMessage": ...}` in its place in `Entries`; the other entries of the request are
  forwarded to moto and really published, with their `EventId`s in the answer
  (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html). `times` then counts
  entries.

Nothing that a fault answers reaches moto, so a faulted write leaves no trace: a retry is the first that counts.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from reliability.proxy import Answer, Forward, Request

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")

JSON_NAMESPACES = {"dynamodb": "com.amazonaws.dynamodb.v20120810"}
"""The `__type` prefix a service puts before its error code (DynamoDB's, documented; the others send the code)."""
JSON_CONTENT_TYPES = {"dynamodb": "application/x-amz-json-1.0", "sqs": "application/x-amz-json-1.0"}
"""botocore's JSON version per service (`jsonVersion` in its models): 1.0 for these, 1.1 for events, secretsmanager."""

MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "ServiceUnavailable": "Service is unable to handle request.",
    "InternalError": "We encountered an internal error. Please try again.",
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your "
        "provisioning level with the UpdateTable API."
    ),
    "ThrottlingException": "Rate exceeded",
    "InternalFailure": "The request processing has failed because of an unknown error, exception or failure.",
    "InternalServiceError": "An error occurred on the server side.",
}


@dataclass
class Fault:
    service: str
    """The SigV4 signing name: `s3`, `dynamodb`, `events`, `secretsmanager`, `sqs`."""
    operation: str
    """`GetObject`, `PutItem`, `PutEvents` ..."""
    code: str
    """The AWS error code to answer with."""
    status: int = 400
    times: int = 1
    """How many matching requests (PutEvents entries with `partial`) to fault."""
    skip: int = 0
    """Matching requests to let through first."""
    partial: bool = False
    """PutEvents only: fail entries inside a 200 answer instead of the whole request."""
    seen: int = field(default=0, init=False)
    """Matching requests (entries) offered to this fault: not those an earlier fault in the list took, nor, for a
    partial fault, those after every partial fault was spent."""
    injected: int = field(default=0, init=False)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}:{self.code}" + (":partial" if self.partial else "")

    def matches(self, service: str, operation: str) -> bool:
        return service == self.service and operation == self.operation

    def take(self) -> bool:
        """Whether this matching request (or entry) is to be faulted; counts it."""
        self.seen += 1
        if self.seen <= self.skip or self.injected >= self.times:
            return False
        self.injected += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.injected >= self.times


def signing_service(request: Request) -> str:
    match = _CREDENTIAL.search(request.header("Authorization"))
    return match.group(1) if match else ""


def s3_operation(method: str, path: str) -> str:
    """The S3 operation of a path-style request (`/<bucket>[/<key>]?<query>`), for the ones the functions make."""
    parts = urlsplit(path)
    query = parse_qs(parts.query, keep_blank_values=True)
    bucket, _, key = parts.path.lstrip("/").partition("/")
    if key:
        return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
            method, method
        )
    if method == "GET" and query.get("list-type") == ["2"]:
        return "ListObjectsV2"
    return f"{method} bucket" if bucket else method


def operation_of(request: Request, service: str) -> str:
    target = request.header("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    if service == "s3":
        return s3_operation(request.method, request.path)
    return ""


def error_answer(service: str, code: str, status: int) -> Answer:
    """The error AWS sends for `code`: S3's XML `<Error>`, or the JSON protocols' `__type` body."""
    request_id = uuid.uuid4().hex.upper()[:16]
    message = MESSAGES.get(code, code)
    if service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
        return Answer(status, _reason(status), headers, body)
    namespace = JSON_NAMESPACES.get(service)
    body = json.dumps({"__type": f"{namespace}#{code}" if namespace else code, "message": message}).encode()
    headers = [
        ("Content-Type", JSON_CONTENT_TYPES.get(service, "application/x-amz-json-1.1")),
        ("x-amzn-RequestId", request_id),
    ]
    return Answer(status, _reason(status), headers, body)


def _reason(status: int) -> str:
    return {200: "OK", 400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "")


class FaultInjector:
    """The proxy's intercept: each request goes to the first fault that still wants it, else to moto."""

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = faults
        self.requests: dict[str, int] = {}
        """service:operation → requests seen (faulted or not)."""
        self._lock = threading.Lock()

    def __call__(self, request: Request, forward: Forward) -> Answer:
        service = signing_service(request)
        operation = operation_of(request, service)
        with self._lock:
            self.requests[f"{service}:{operation}"] = self.requests.get(f"{service}:{operation}", 0) + 1
            candidates = [f for f in self.faults if f.matches(service, operation)]
            whole = next((f for f in candidates if not f.partial and f.take()), None)
        if whole is not None:
            return error_answer(service, whole.code, whole.status)
        partial = next((f for f in candidates if f.partial and not f.exhausted), None)
        if partial is not None and service == "events" and operation == "PutEvents":
            return self._partial_put_events(request, forward, partial)
        return forward(request)

    def _partial_put_events(self, request: Request, forward: Forward, fault: Fault) -> Answer:
        entries = json.loads(request.body or b"{}").get("Entries", [])
        with self._lock:
            failed = [fault.take() for _ in entries]
        if not any(failed):
            return forward(request)
        kept = [entry for entry, fail in zip(entries, failed, strict=True) if not fail]
        published: list[dict] = []
        if kept:
            answer = forward(_with_body(request, json.dumps({"Entries": kept}).encode()))
            if answer.status != 200:
                return answer
            published = json.loads(answer.body).get("Entries", [])
        results, sent = [], iter(published)
        for fail in failed:
            results.append(
                {"ErrorCode": fault.code, "ErrorMessage": MESSAGES.get(fault.code, fault.code)} if fail else next(sent)
            )
        body = {"FailedEntryCount": sum(failed) + sum(1 for r in published if r.get("ErrorCode")), "Entries": results}
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))]
        return Answer(200, "OK", headers, json.dumps(body).encode())

    def report(self) -> dict[str, dict[str, int]]:
        """Per fault: matching requests seen, and how many were faulted."""
        with self._lock:
            return {fault.name: {"seen": fault.seen, "injected": fault.injected} for fault in self.faults}

    def all_injected(self) -> bool:
        with self._lock:
            return all(fault.exhausted for fault in self.faults)


def _with_body(request: Request, body: bytes) -> Request:
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    headers["Content-Length"] = str(len(body))
    return Request(request.method, request.path, headers, body)
