"""At most one registration per upload across deliveries: Powertools idempotency on DynamoDB.

The key is the upload's identity (bucket, key, object version or etag), never the event id, which
differs between deliveries and replays. A failed or deferred attempt deletes its record, so only
completed registrations are remembered, for the configured time-to-live.
"""

from __future__ import annotations

from collections.abc import Callable

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext


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
        persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=boto3.client("dynamodb"))

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
        return self._once(payload=payload)

    def register_context(self, context: LambdaContext) -> None:
        """Lets an in-progress record expire with the invocation (for callers that pass only the payload)."""
        self._config.register_lambda_context(context)
