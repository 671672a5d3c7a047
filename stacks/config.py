"""The deployment's settings, read from CDK context once and validated in one place.

Every key has a default (also written in `cdk.json`, which a test keeps in step with this file) and can be
overridden on the command line, for example `npx cdk deploy -c mlflowTrackingUri=https://mlflow.example.com`.
The CLI passes `-c` values as strings, so numbers, booleans and objects are also accepted in their string form
(`-c registerMaxConcurrency=10`, `-c tracing=true`, `-c experimentModelNames='{"12": "churn"}'`).
A wrong value stops the synth with a `ConfigError` that names the key.

`mlflowTrackingUri` is the one value a real deployment must provide. It defaults to empty so that a fresh checkout
synthesizes (tests, `cdk synth`, reviews of the template); the functions then get `PLACEHOLDER_TRACKING_URI` and
the stack adds a synth warning. `cdk deploy --strict` (and `cdk synth --strict`) fail on that warning, so a
deployment cannot silently ship the placeholder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from functions.routing import DEFAULT_ARTIFACT_ROOT_PREFIX, PLAIN_UPLOAD_PREFIX
from functions.settings import DEFAULT_MODEL_NAME_TAG

if TYPE_CHECKING:
    from constructs import Node

PLACEHOLDER_TRACKING_URI = "https://mlflow.example.invalid"
"""Used when `mlflowTrackingUri` is empty, so that synth and tests work; the stack then warns (see README)."""

# fmt: off
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
# fmt: on
"""The retention periods CloudWatch Logs accepts."""

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,99}$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_URI = re.compile(r"^(https?://\S+|databricks(-uc)?(://\S*)?|arn:aws[a-z-]*:sagemaker:\S+)$")


class ConfigError(ValueError):
    """A context value is missing its type or range; the message names the context key."""


@dataclass(frozen=True)
class RegistryConfig:
    """Everything the stack can be told from outside, with the defaults a fresh checkout deploys."""

    stack_name: str = "RegistryAutopilot"
    alarm_email: str = ""
    artifact_root_prefix: str = DEFAULT_ARTIFACT_ROOT_PREFIX
    archive_retention_days: int = 30
    log_retention_days: int = 30
    register_max_concurrency: int = 5
    mlflow_tracking_uri: str = ""
    mlflow_registry_uri: str = ""
    mlflow_credentials_secret_arn: str = ""
    model_name_tag: str = DEFAULT_MODEL_NAME_TAG
    experiment_model_names: Mapping[str, str] = field(default_factory=dict)
    max_pending_hours: int = 6
    noncurrent_version_expiration_days: int = 90
    databricks_instance_profile: bool = False
    tracing: bool = False

    @property
    def uses_placeholder_tracking_uri(self) -> bool:
        return not self.mlflow_tracking_uri

    @property
    def effective_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or PLACEHOLDER_TRACKING_URI

    @property
    def max_pending_seconds(self) -> int:
        return self.max_pending_hours * 3600

    @classmethod
    def from_node(cls, node: Node) -> RegistryConfig:
        """Read every key from the construct tree's context (`app.node`), falling back to the defaults."""
        return cls.from_mapping({key: node.try_get_context(key) for key in CONTEXT_KEYS.values()})

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> RegistryConfig:
        """Validate raw context values (None means 'not set'); raises ConfigError naming the first bad key."""
        defaults = cls()
        values: dict[str, Any] = {}
        for attribute, key in CONTEXT_KEYS.items():
            raw = context.get(key)
            values[attribute] = getattr(defaults, attribute) if raw is None else _PARSERS[attribute](key, raw)
        return cls(**values)


def context_key(attribute: str) -> str:
    """`artifact_root_prefix` -> `artifactRootPrefix`."""
    head, *rest = attribute.split("_")
    return head + "".join(part.capitalize() for part in rest)


CONTEXT_KEYS: dict[str, str] = {f.name: context_key(f.name) for f in fields(RegistryConfig)}
"""Dataclass attribute -> context key (camelCase)."""


# --- parsers: one per attribute, each (key, raw value) -> parsed value or ConfigError -----------------------------


def _integer(minimum: int, maximum: int, allowed: tuple[int, ...] = ()) -> Callable[[str, Any], int]:
    def parse(key: str, raw: Any) -> int:
        if isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ConfigError(f"context key {key!r} must be an integer, got {raw!r}")
        if allowed and raw not in allowed:
            raise ConfigError(f"context key {key!r} must be one of {', '.join(map(str, allowed))}; got {raw}")
        if not minimum <= raw <= maximum:
            raise ConfigError(f"context key {key!r} must be between {minimum} and {maximum}; got {raw}")
        return raw

    return parse


def _boolean(key: str, raw: Any) -> bool:
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    if not isinstance(raw, bool):
        raise ConfigError(f"context key {key!r} must be true or false, got {raw!r}")
    return raw


def _string(pattern: re.Pattern[str] | None = None, *, allow_empty: bool, hint: str = "") -> Callable[[str, Any], str]:
    def parse(key: str, raw: Any) -> str:
        if not isinstance(raw, str):
            raise ConfigError(f"context key {key!r} must be a string, got {raw!r}")
        value = raw.strip()
        if not value:
            if allow_empty:
                return ""
            raise ConfigError(f"context key {key!r} must not be empty")
        if pattern is not None and not pattern.fullmatch(value):
            raise ConfigError(f"context key {key!r} {hint or f'must match {pattern.pattern}'}; got {value!r}")
        return value

    return parse


def _artifact_root_prefix(key: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"context key {key!r} must be a string, got {raw!r}")
    value = raw.strip().strip("/")
    if not _PREFIX.fullmatch(value):
        raise ConfigError(
            f"context key {key!r} must be a key prefix such as 'mlflow' or 'teams/mlflow' (letters, digits, '.', '_', "
            f"'-', separated by '/'; no wildcards); got {raw!r}"
        )
    if value == PLAIN_UPLOAD_PREFIX or value.startswith(f"{PLAIN_UPLOAD_PREFIX}/"):
        raise ConfigError(f"context key {key!r} must not overlap the plain-upload prefix {PLAIN_UPLOAD_PREFIX!r}")
    return value


def _experiment_model_names(key: str, raw: Any) -> dict[str, str]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"context key {key!r} must be a JSON object of experiment id -> model name: {exc}"
            ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"context key {key!r} must be an object of experiment id -> model name, got {raw!r}")
    for experiment_id, model_name in raw.items():
        if not isinstance(experiment_id, str) or not experiment_id.strip():
            raise ConfigError(f"context key {key!r}: experiment ids must be non-empty strings, got {experiment_id!r}")
        if not isinstance(model_name, str) or not model_name.strip():
            raise ConfigError(
                f"context key {key!r}: the model name for experiment {experiment_id!r} must be a "
                f"non-empty string, got {model_name!r}"
            )
    return dict(raw)


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "stack_name": _string(
        _STACK_NAME,
        allow_empty=False,
        hint="must start with a letter and hold only letters, digits and '-' (at most 100)",
    ),
    # Subscribed to the alarm topic (SNS asks the address to confirm); empty: subscribe to `AlarmTopicArn` yourself.
    # One address (a distribution list for several): no spaces, commas or angle brackets, and a dot in the domain.
    "alarm_email": _string(
        re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"),
        allow_empty=True,
        hint="must be one e-mail address such as oncall@example.com",
    ),
    "artifact_root_prefix": _artifact_root_prefix,
    # 0 keeps archived events forever (EventBridge's own meaning of RetentionDays=0).
    "archive_retention_days": _integer(0, 3650),
    "log_retention_days": _integer(1, 3653, LOG_RETENTION_DAYS),
    # The event source mapping's maximum concurrency: at least 2 (Lambda's floor); it protects the MLflow server.
    "register_max_concurrency": _integer(2, 1000),
    "mlflow_tracking_uri": _string(
        _URI, allow_empty=True, hint="must be an http(s) URL, 'databricks' or a SageMaker MLflow ARN"
    ),
    "mlflow_registry_uri": _string(
        _URI, allow_empty=True, hint="must be an http(s) URL, 'databricks-uc' or a SageMaker MLflow ARN"
    ),
    "mlflow_credentials_secret_arn": _string(
        _SECRET_ARN, allow_empty=True, hint="must be the full ARN of a Secrets Manager secret"
    ),
    "model_name_tag": _string(
        re.compile(r"^[\w.:/-]{1,250}$"),
        allow_empty=False,
        hint="must be an MLflow tag key (letters, digits, '_', '.', ':', '/', '-')",
    ),
    "experiment_model_names": _experiment_model_names,
    # Incomplete uploads are retried for at most this long; it must stay well inside the queue's 4-day retention.
    "max_pending_hours": _integer(1, 72),
    "noncurrent_version_expiration_days": _integer(1, 3650),
    "databricks_instance_profile": _boolean,
    "tracing": _boolean,
}
