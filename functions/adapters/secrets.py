"""The MLflow credentials secret, read through Powertools Parameters (cached for 5 minutes)."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters


def read_secret(arn: str) -> str | None:
    if not arn:
        return None
    value = parameters.get_secret(arn, max_age=300)
    return value if isinstance(value, str) else None
