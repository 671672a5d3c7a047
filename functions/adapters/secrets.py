"""Secrets Manager values, read through Powertools Parameters (cached for 5 minutes per container).

The provider's client is `functions.adapters.aws.client` (the shared retry and timeout settings), not the one
Powertools would build on a session of its own. A read that fails is `Unavailable("secret_store_<throttled|
unavailable|refused>")`, with the AWS error code: Powertools wraps every SDK error in `GetParameterError`, and the
code is found behind it. Secrets Manager's errors carry no secret value.
"""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from functions.adapters import aws
from functions.domain.errors import Unavailable

MAX_AGE_SECONDS = 300
DEPENDENCY = "secret_store"


@lru_cache(maxsize=1)
def _provider() -> SecretsProvider:
    return SecretsProvider(boto3_client=aws.client("secretsmanager"))


def read_secret(arn: str, *, force: bool = False) -> str | None:
    """The secret's string value (None for an empty ARN or a binary secret); `force` bypasses the cache."""
    if not arn:
        return None
    try:
        value = _provider().get(arn, max_age=MAX_AGE_SECONDS, force_fetch=force)
    except GetParameterError as error:
        cause = aws.botocore_cause(error)
        if cause is None:
            raise Unavailable(f"{DEPENDENCY}_unavailable", f"Secrets Manager GetSecretValue failed: {error}") from None
        raise aws.dependency_failure(DEPENDENCY, "Secrets Manager GetSecretValue", cause) from None
    return value if isinstance(value, str) else None
