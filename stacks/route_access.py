"""What each route's function may do beyond draining its own queue, keyed by route name.

A route added to `functions.routing.ROUTES` gets `DEFAULT_ACCESS` (talk to MLflow, publish project events, use
the idempotency table, re-enqueue and dead-letter its own messages) without any change here; a route that needs
more (reading artifacts) or less says so in `ACCESS`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RouteAccess:
    read_artifacts: bool = False
    """s3:GetObject(Version) under the watched prefixes, prefix-limited s3:ListBucket, kms:Decrypt via S3."""
    publish_events: bool = True
    """events:PutEvents on the project bus (never the default bus)."""
    idempotency: bool = True
    """Get/Put/Update/DeleteItem on the idempotency table."""
    requeue: bool = True
    """sqs:SendMessage on its own queue: an incomplete upload is re-enqueued with a delay."""
    dead_letter: bool = True
    """sqs:SendMessage on its own dead-letter queue: bad input is dead-lettered at once, with a reason."""
    mlflow_credentials: bool = True
    """secretsmanager:GetSecretValue on the configured MLflow credentials secret (when one is configured)."""


DEFAULT_ACCESS = RouteAccess()

ACCESS: dict[str, RouteAccess] = {
    "register": RouteAccess(read_artifacts=True),
    # Reads MLmodel, metrics.json and the file list; keeps no idempotency records (a verdict is idempotent).
    "validate": RouteAccess(read_artifacts=True, idempotency=False, requeue=False),
    # Reads metrics.json of the candidate and of the alias holder; an alias move is idempotent (no records); a FIFO
    # queue refuses per-message delays, so it never re-enqueues (a record that is not ready is retried in order).
    "aliases": RouteAccess(
        read_artifacts=True,
        publish_events=True,
        idempotency=False,
        requeue=False,
        dead_letter=True,
        mlflow_credentials=True,
    ),
}


def access_for(route_name: str) -> RouteAccess:
    return ACCESS.get(route_name, DEFAULT_ACCESS)
