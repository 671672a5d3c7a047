"""Secrets Manager values, read through Powertools Parameters (cached for 5 minutes per container)."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

MAX_AGE_SECONDS = 300


def read_secret(arn: str, *, force: bool = False) -> str | None:
    """The secret's string value (None for an empty ARN or a binary secret); `force` bypasses the cache."""
    if not arn:
        return None
    value = parameters.get_secret(arn, max_age=MAX_AGE_SECONDS, force_fetch=force)
    return value if isinstance(value, str) else None
