"""What a failed AWS call means (`functions.adapters.aws`), on botocore's own exceptions and parsers.

The `ClientError`s here are made the way a botocore client makes them: the fault proxy's error answer
(`reliability.faults.error_answer`) parsed by botocore's parser for the service's protocol, then raised as
`ClientError(parsed, operation)`. So these tests also pin that the injected shapes parse into the codes AWS sends.
The clients themselves meet the proxy in `tests/integration/test_aws_faults.py`.
"""

from __future__ import annotations

import botocore.session
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.parsers import create_parser

from functions.adapters import aws
from functions.adapters.eventbridge import entry_failure
from functions.adapters.idempotency import persistence_failure
from reliability.faults import Request, error_answer, s3_operation, signing_service

_SESSION = botocore.session.get_session()


def client_error(service: str, operation: str, code: str, status: int) -> ClientError:
    """The ClientError a botocore client raises for the fault proxy's answer."""
    model = _SESSION.get_service_model(service)
    answer = error_answer(service, code, status)
    parsed = create_parser(model.protocol).parse(
        {"status_code": answer.status, "headers": dict(answer.headers), "body": answer.body},
        model.operation_model(operation).output_shape,
    )
    return ClientError(parsed, operation)


@pytest.mark.parametrize(
    ("service", "operation", "code", "status", "kind"),
    [
        ("s3", "GetObject", "SlowDown", 503, "throttled"),
        ("s3", "GetObject", "InternalError", 500, "unavailable"),
        ("s3", "GetObject", "AccessDenied", 403, "refused"),
        ("dynamodb", "PutItem", "ProvisionedThroughputExceededException", 400, "throttled"),
        ("dynamodb", "UpdateItem", "ThrottlingException", 400, "throttled"),
        ("dynamodb", "PutItem", "RequestLimitExceeded", 400, "throttled"),
        ("dynamodb", "PutItem", "InternalServerError", 500, "unavailable"),
        ("dynamodb", "PutItem", "ResourceNotFoundException", 400, "refused"),
        ("events", "PutEvents", "ThrottlingException", 400, "throttled"),
        ("events", "PutEvents", "InternalException", 500, "unavailable"),
        ("events", "PutEvents", "AccessDeniedException", 400, "refused"),
        ("secretsmanager", "GetSecretValue", "ServiceUnavailable", 503, "unavailable"),
        ("secretsmanager", "GetSecretValue", "InternalServiceError", 400, "unavailable"),
        ("secretsmanager", "GetSecretValue", "ThrottlingException", 400, "throttled"),
        ("secretsmanager", "GetSecretValue", "ResourceNotFoundException", 400, "refused"),
        ("sqs", "SendMessage", "ServiceUnavailable", 503, "unavailable"),
        ("sqs", "SendMessage", "SomethingNew", 429, "throttled"),
    ],
)
def test_each_aws_error_is_throttled_unavailable_or_refused(service, operation, code, status, kind) -> None:
    error = client_error(service, operation, code, status)
    # The injected shape parses into the code and status AWS sends...
    assert aws.error_code(error) == code
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    # ...and the adapters' reason says which dependency failed and how.
    assert aws.failure_kind(error) == kind
    failure = aws.dependency_failure("artifact_store", f"{service} {operation}", error)
    assert failure.reason == f"artifact_store_{kind}"
    assert f"{code}, HTTP {status}" in failure.message


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1/"),
        ConnectTimeoutError(endpoint_url="http://127.0.0.1:1/"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1/"),
        ResponseStreamingError(error="connection broken"),
    ],
)
def test_connections_that_fail_or_time_out_are_unavailable(error) -> None:
    failure = aws.dependency_failure("event_bus", "EventBridge PutEvents", error)
    assert failure.reason == "event_bus_unavailable"
    assert type(error).__name__ in failure.message


def test_the_clients_retry_in_standard_mode_three_times_with_short_timeouts() -> None:
    config = aws.CLIENT_CONFIG
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert (config.connect_timeout, config.read_timeout) == (2, 5)


def _wrapped(wrapper: type[Exception], error: Exception) -> Exception:
    """`wrapper` raised the way Powertools raises it: inside the `except` that caught `error`."""
    try:
        try:
            raise error
        except Exception as caught:
            if wrapper is IdempotencyPersistenceLayerError:
                raise IdempotencyPersistenceLayerError("Failed to save in progress record", caught) from caught
            raise GetParameterError(str(caught))  # noqa: B904 - as Powertools Parameters does
    except wrapper as raised:
        return raised
    raise AssertionError("not raised")


def test_the_dynamodb_error_behind_powertools_idempotency_error_decides_the_reason() -> None:
    throttle = client_error("dynamodb", "PutItem", "ProvisionedThroughputExceededException", 400)
    error = _wrapped(IdempotencyPersistenceLayerError, throttle)
    assert aws.botocore_cause(error) is throttle
    failure = persistence_failure(error)
    assert failure.reason == "idempotency_store_throttled"
    assert failure.message.startswith("Failed to save in progress record: DynamoDB failed (")


def test_an_idempotency_error_without_an_aws_cause_is_unavailable() -> None:
    error = _wrapped(IdempotencyPersistenceLayerError, ValueError("unserialisable"))
    assert aws.botocore_cause(error) is None
    assert persistence_failure(error).reason == "idempotency_store_unavailable"


def test_the_secrets_manager_error_is_found_behind_get_parameter_error() -> None:
    unavailable = client_error("secretsmanager", "GetSecretValue", "ServiceUnavailable", 503)
    error = _wrapped(GetParameterError, unavailable)
    assert error.__cause__ is None  # Powertools does not chain it explicitly
    assert aws.botocore_cause(error) is unavailable


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("ThrottlingException", "event_bus_throttled"),
        ("InternalFailure", "event_bus_unavailable"),
        ("AccessDeniedException", "event_bus_refused"),
        ("MalformedDetail", "event_bus_refused"),
        ("", "event_bus_refused"),
    ],
)
def test_a_put_events_entry_failure_is_classified_by_its_error_code(code: str, reason: str) -> None:
    failure = entry_failure("Model Version Registered", code, "why", attempts=3)
    assert failure.reason == reason
    assert "3 time(s)" in failure.message


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/bucket/models/m/1/MLmodel", "GetObject"),
        ("GET", "/bucket/models/m/1/MLmodel?versionId=abc", "GetObject"),
        ("HEAD", "/bucket/k", "HeadObject"),
        ("PUT", "/bucket/k", "PutObject"),
        ("GET", "/bucket?list-type=2&prefix=models%2Fm%2F", "ListObjectsV2"),
        ("GET", "/bucket?versioning", "GET bucket"),
    ],
)
def test_s3_operations_are_told_by_method_and_path(method: str, path: str, operation: str) -> None:
    assert s3_operation(method, path) == operation


def test_the_service_is_the_sigv4_signing_name() -> None:
    authorization = (
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    assert signing_service(Request("POST", "/", {"authorization": authorization}, b"")) == "secretsmanager"
    assert signing_service(Request("POST", "/", {}, b"")) == ""
