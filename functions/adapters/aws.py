"""The AWS clients of every adapter, and what a failed AWS call means for the record.

Clients: one `botocore` configuration for all of them, set here rather than left to the SDK's defaults, because the
defaults are not the same everywhere (boto3 and botocore come with the Lambda runtime, and older botocores default to
the `legacy` retry mode with 5 attempts) and because the queue, not the client, is where a long outage is waited out:

- `standard` retry mode, 3 attempts in all (botocore's own default for standard mode; DynamoDB's would be 4): a
  throttle (`SlowDown`, `ProvisionedThroughputExceededException`, `ThrottlingException` ...), a 5xx, a connection
  error or a timeout is retried twice with jittered exponential backoff (at most 1 s, then 2 s, for a throttle), so
  a blip costs a second and a fault that persists surfaces as `Unavailable` within seconds, for the queue to retry
  with its own backoff (2 s ... 5 min) and dead-letter after `maxReceiveCount`. Not `adaptive`: its client-side
  rate limiter keeps state per client, which a Lambda container barely has, and it can sleep before sending; the
  AWS SDK reference calls it appropriate only for specialised cases
  (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
- a 2 s connect and a 5 s read timeout instead of botocore's 60 s each: every call here moves a few kilobytes
  (an MLmodel, a metrics file, one idempotency item, one event, one secret), so an endpoint that accepts the
  connection and then answers nothing (a hung service) costs at most about 3 × 5 s, not 3 minutes of the
  function's 60 s timeout.

Classification (`dependency_failure`): every botocore error becomes `Unavailable` (the queue retries it), with a
reason that says which dependency failed and how, so logs and the `Retried` metric's `reason` dimension name it:

- `<dependency>_throttled`: the service refused the rate (the error codes botocore's standard mode treats as
  throttling, or HTTP 429);
- `<dependency>_unavailable`: a 5xx or a service's internal error code (whatever its status), a connection that
  failed or timed out, or any other botocore error;
- `<dependency>_refused`: any other 4xx (access denied, a missing table or bus, a KMS key that refuses): a
  deployment fault that retries cannot fix but a fix and a redrive can, so it is retried and dead-lettered rather
  than dropped.

The message names the operation, the AWS error code and HTTP status, and the SDK's own sentence (which says how many
attempts it made), never a request body.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from functions.domain.errors import Unavailable

MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 5
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
)

# The codes botocore's standard retry mode treats as throttling (botocore/retries/standard.py,
# ThrottledRetryableChecker), the ones this project's services send among them: S3 `SlowDown`, DynamoDB
# `ProvisionedThroughputExceededException` and `ThrottlingException`, EventBridge and Secrets Manager
# `ThrottlingException`, SQS `RequestThrottled`.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)


# Server-side failures whatever their HTTP status: Secrets Manager's `InternalServiceError` is documented with
# status 400 on its Common Errors page (https://docs.aws.amazon.com/secretsmanager/latest/apireference/CommonErrors.html;
# the page's markdown copy says 500), and botocore's model gives it no status, so a status rule alone would call it
# "refused".
SERVER_ERROR_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServiceError",
        "InternalServiceFailure",
        "InternalServerError",
        "InternalException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def client(service: str) -> Any:
    """A client of boto3's default session (shared by every adapter) with `CLIENT_CONFIG`."""
    return boto3.client(service, config=CLIENT_CONFIG)


def failure_kind(error: BaseException) -> str:
    """`throttled`, `unavailable` or `refused` for a botocore error (see the module docstring)."""
    if isinstance(error, ClientError):
        code = error_code(error)
        status = _status(error)
        if code in THROTTLING_CODES or status == 429:
            return "throttled"
        if code in SERVER_ERROR_CODES:
            return "unavailable"
        if status is not None and 400 <= status < 500:
            return "refused"
        return "unavailable"
    return "unavailable"


def error_code(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "")
    return type(error).__name__


def dependency_failure(dependency: str, operation: str, error: BaseException) -> Unavailable:
    """`Unavailable("<dependency>_<kind>", ...)` for a botocore error of `operation` (say, `S3 GetObject`)."""
    status = _status(error) if isinstance(error, ClientError) else None
    detail = f"{error_code(error)}" + (f", HTTP {status}" if status else "")
    return Unavailable(f"{dependency}_{failure_kind(error)}", f"{operation} failed ({detail}): {str(error)[:500]}")


def botocore_cause(error: BaseException) -> BaseException | None:
    """The botocore error behind `error` (itself, or one in its `__cause__`/`__context__` chain), if any.

    Powertools wraps the SDK's errors in its own (`IdempotencyPersistenceLayerError` with `from`, `GetParameterError`
    raised inside an `except`), so the AWS error code is found down the chain.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (ClientError, BotoCoreError)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _status(error: ClientError) -> int | None:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status else None
