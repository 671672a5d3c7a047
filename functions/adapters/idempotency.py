"""At most one registration per upload across deliveries: Powertools idempotency on DynamoDB.

The key is the upload's identity (bucket, key, object version or etag), never the event id, which
differs between deliveries and replays. A failed or deferred attempt deletes its record, so only
completed registrations are remembered, for the configured time-to-live.

An invocation that dies mid-record (killed, out of memory, the function timeout) cannot delete its record: it
stays `INPROGRESS`. Powertools gives such a record an `in_progress_expiration` of "now + the invocation's remaining
time" when the Lambda context is registered (`IdempotencyConfig.register_lambda_context`), and a later attempt may
take over a record whose in-progress expiry has passed (`BasePersistenceLayer.save_inprogress` and the DynamoDB
layer's conditional put, `attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis`, in
aws-lambda-powertools' `utilities/idempotency/persistence/`; added for Lambda timeouts in v1.26.7,
https://github.com/aws-powertools/powertools-lambda-python/pull/1387, after issue #1038). Without the context there is
no in-progress expiry, and the record would hold the upload until its 48-hour time-to-live: every delivery would
fail with `IdempotencyAlreadyInProgressError` until the message reached the dead-letter queue. So every call here
passes the context: the record expires when the killed invocation's time would have run out, which is before
the message comes back (its visibility timeout is 6 function timeouts).

A DynamoDB call that fails (throttled, 5xx, unreachable: after botocore's retries, `functions.adapters.aws`) reaches
Powertools, which raises `IdempotencyPersistenceLayerError` for it, whichever call it was: saving the in-progress
record (PutItem), reading an existing one (GetItem), deleting it after a failed attempt (DeleteItem) or marking it
complete (UpdateItem). It becomes `Unavailable("idempotency_store_<throttled|unavailable|refused>")` here, so the
record is retried. A record the failure left `INPROGRESS` (the work ran, the update did not) expires with the
invocation's remaining time (the Lambda context is registered); a later attempt then runs the work again, and the
registrar's lookup by source finds the version the first attempt made: registered once, announced again.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters import aws
from functions.domain.errors import InProgress, Unavailable

DEPENDENCY = "idempotency_store"


class IdempotentCall:
    """Wraps `work(payload) -> dict` so a payload with the same `identity` runs once."""

    def __init__(self, work: Callable[[dict], dict], *, table_name: str, ttl_seconds: int, key_prefix: str) -> None:
        self._config = IdempotencyConfig(
            event_key_jmespath="identity",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_seconds,
        )
        # A client of boto3's default session, which the other adapters' clients share: a session of its own (the
        # Powertools default) would load botocore's endpoint data a second time on every cold start.
        persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=aws.client("dynamodb"))
        self._persistence = persistence
        self._key_prefix = key_prefix

        @idempotent_function(
            data_keyword_argument="payload",
            persistence_store=persistence,
            config=self._config,
            key_prefix=key_prefix,
        )
        def once(payload: dict) -> dict:
            return work(payload)

        self._once = once

    def __call__(self, payload: dict, context: LambdaContext | None = None) -> dict:
        if context is not None:
            self._config.register_lambda_context(context)
        try:
            return self._once(payload=payload)
        except IdempotencyPersistenceLayerError as error:
            raise persistence_failure(error) from error
        except IdempotencyAlreadyInProgressError as error:
            # Another invocation holds the record (or a dead one did, until its in-progress expiry passes).
            raise InProgress("attempt_in_progress", f"another attempt holds this record: {str(error)[:300]}") from error

    @property
    def store(self) -> DynamoDBPersistenceLayer:
        """The persistence layer, configured as the wrapped call uses it (to read or seed a record)."""
        self._persistence.configure(self._config, key_prefix=self._key_prefix)
        return self._persistence

    def register_context(self, context: LambdaContext) -> None:
        """Lets an in-progress record expire with the invocation (for callers that pass only the payload)."""
        self._config.register_lambda_context(context)


def persistence_failure(error: IdempotencyPersistenceLayerError) -> Unavailable:
    """The `Unavailable` for a failed idempotency store call, with the DynamoDB error behind Powertools' own."""
    cause = aws.botocore_cause(error)
    step = error.message or "idempotency store call failed"  # "Failed to save in progress record ...", etc.
    if cause is None:
        return Unavailable(f"{DEPENDENCY}_unavailable", f"{step}: {str(error)[:500]}")
    failure = aws.dependency_failure(DEPENDENCY, "DynamoDB", cause)
    return Unavailable(failure.reason, f"{step}: {failure.message}")
