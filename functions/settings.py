"""The functions' configuration: environment variables, parsed once per container.

`function_environment` is the only place that names the variables. The stack calls it with CloudFormation
tokens, the sandbox with its local endpoints, and the handlers read the result back through `Settings`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.domain.tags import DEFAULT_MODEL_NAME_TAG
from functions.project import ROOT
from functions.routing import DEFAULT_ARTIFACT_ROOT_PREFIX, EVENT_SOURCE, Route

DEFAULT_MLMODEL_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_PENDING_SECONDS = 6 * 3600
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 48 * 3600
DEFAULT_PROOF_TIMEOUT_SECONDS = 300
METRICS_NAMESPACE = "RegistryAutopilot"
# Shipped beside the `functions` package: the repository's `policies/`, copied into the Lambda code asset.
DEFAULT_POLICIES_DIR = ROOT / "policies"

NonEmpty = Annotated[str, Field(min_length=1)]


class Settings(BaseModel):
    """Everything a function needs to know about its deployment."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ARTIFACT_BUCKET: NonEmpty
    ARTIFACT_ROOT_PREFIX: NonEmpty = DEFAULT_ARTIFACT_ROOT_PREFIX
    EVENT_BUS_NAME: NonEmpty
    EVENT_SOURCE: NonEmpty = EVENT_SOURCE
    IDEMPOTENCY_TABLE: NonEmpty
    IDEMPOTENCY_TTL_SECONDS: Annotated[int, Field(ge=3600)] = DEFAULT_IDEMPOTENCY_TTL_SECONDS
    QUEUE_URL: NonEmpty
    DEAD_LETTER_QUEUE_URL: NonEmpty
    MLFLOW_TRACKING_URI: NonEmpty
    MLFLOW_REGISTRY_URI: str = ""
    MLFLOW_CREDENTIALS_SECRET_ARN: str = ""
    MODEL_NAME_TAG: NonEmpty = DEFAULT_MODEL_NAME_TAG
    EXPERIMENT_MODEL_NAMES: dict[str, str] = Field(default_factory=dict)
    MLMODEL_MAX_BYTES: Annotated[int, Field(gt=0, le=64 * 1024 * 1024)] = DEFAULT_MLMODEL_MAX_BYTES
    MAX_PENDING_SECONDS: Annotated[int, Field(ge=60)] = DEFAULT_MAX_PENDING_SECONDS
    POLICIES_DIR: NonEmpty = str(DEFAULT_POLICIES_DIR)
    REPLAY_ALIAS_MOVES: Literal["dry-run", "live"] = "dry-run"
    """Events replayed from an archive (`replay-name`) compute alias decisions but move nothing, unless live."""
    PROOF: Literal["off", "uv", "virtualenv", "local"] = "off"
    """How the validate route proves models whose policy says `proof: smoke` (the `env_manager`); off: it proves none,
    and such a version fails with `proof_disabled`. `local` proves with the function's own packages (sandbox, tests)."""
    PROOF_TIMEOUT_SECONDS: Annotated[int, Field(ge=1, le=900)] = DEFAULT_PROOF_TIMEOUT_SECONDS
    PROOF_INDEX_URL: str = ""
    """A package index for the model's environment (a mirror, CodeArtifact); empty: uv's default (PyPI)."""
    PROOF_FIND_LINKS: str = ""
    """Wheel directories, separated by ':' (with no index URL: no index at all)."""
    PROOF_OFFLINE: bool = False
    PROOF_PYTHON_DOWNLOADS: bool = False
    """Whether uv may download the model's Python when no interpreter of its minor version is found."""
    PROOF_ENV_CACHE_DIR: str = ""
    """Where built environments are kept while the container lives; empty: `<tmp>/proof-envs`."""

    @field_validator("EXPERIMENT_MODEL_NAMES", mode="before")
    @classmethod
    def _parse_json(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("ARTIFACT_ROOT_PREFIX")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip("/")


def snapshotting() -> bool:
    """Whether Lambda is initializing a SnapStart version to snapshot it (`AWS_LAMBDA_INITIALIZATION_TYPE`)."""
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"


def build_into_snapshot(build: Callable[[], object]) -> None:
    """Call `build` (a handler's `_dependencies`) now if Lambda is about to snapshot this INIT; else leave it to the
    first invocation.

    Restored containers then start with the clients built and MLflow imported. They hold no connection and no secret
    yet: the MLflow secret is read on first use, and SnapStart containers get AWS credentials from the container
    endpoint, which the SDK refreshes.
    """
    if snapshotting():
        build()


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Parse the environment once per container; fails fast with the names of bad variables."""
    return Settings.model_validate(dict(os.environ))


def function_environment(
    route: Route,
    *,
    bucket: str,
    artifact_root_prefix: str,
    event_bus_name: str,
    idempotency_table: str,
    queue_url: str,
    dead_letter_queue_url: str,
    tracking_uri: str,
    registry_uri: str = "",
    credentials_secret_arn: str = "",
    model_name_tag: str = DEFAULT_MODEL_NAME_TAG,
    experiment_model_names: dict[str, str] | None = None,
    max_pending_seconds: int = DEFAULT_MAX_PENDING_SECONDS,
    log_level: str = "INFO",
    tracing: bool = False,
    mlflow_sigv4: bool = False,
    mlflow_insecure_tls: bool = False,
    mlflow_server_cert_path: str = "",
    policies_dir: str = "",
    replay_alias_moves: str = "dry-run",
    proof: str = "off",
    proof_timeout_seconds: int = DEFAULT_PROOF_TIMEOUT_SECONDS,
    proof_index_url: str = "",
    proof_find_links: str = "",
    proof_offline: bool = False,
    proof_python_downloads: bool = False,
) -> dict[str, str]:
    """The environment of one route's function, on AWS and in the sandbox alike.

    The `mlflow_*` ones are MLflow's own client settings: SigV4-signed requests (an MLflow server behind API Gateway
    with IAM auth), TLS verification off (never the default), and a CA bundle for a server with a private CA.
    """
    env = {
        "ARTIFACT_BUCKET": bucket,
        "ARTIFACT_ROOT_PREFIX": artifact_root_prefix,
        "EVENT_BUS_NAME": event_bus_name,
        "IDEMPOTENCY_TABLE": idempotency_table,
        "QUEUE_URL": queue_url,
        "DEAD_LETTER_QUEUE_URL": dead_letter_queue_url,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MODEL_NAME_TAG": model_name_tag,
        "EXPERIMENT_MODEL_NAMES": json.dumps(experiment_model_names or {}, sort_keys=True),
        "MAX_PENDING_SECONDS": str(max_pending_seconds),
        "REPLAY_ALIAS_MOVES": replay_alias_moves,
        "POWERTOOLS_SERVICE_NAME": f"registry-autopilot-{route.name}",
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": log_level,
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        # mlflow-skinny depends on GitPython; Lambda has no git binary.
        "GIT_PYTHON_REFRESH": "quiet",
    }
    if registry_uri:
        env["MLFLOW_REGISTRY_URI"] = registry_uri
    if credentials_secret_arn:
        env["MLFLOW_CREDENTIALS_SECRET_ARN"] = credentials_secret_arn
    env.update(mlflow_client_environment(mlflow_sigv4, mlflow_insecure_tls, mlflow_server_cert_path))
    env.update(mlflow_client_timeouts(route))
    if policies_dir:
        env["POLICIES_DIR"] = policies_dir
    if proof != "off" and route.name == "validate":  # the one route that proves (functions.domain.validation)
        env |= {"PROOF": proof, "PROOF_TIMEOUT_SECONDS": str(proof_timeout_seconds)}
        # MLflow's per-request timeout from the time the proof leaves, shared by the record's few MLflow requests.
        outside = max(1, route.timeout_seconds - proof_timeout_seconds)
        env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(min(int(env["MLFLOW_HTTP_REQUEST_TIMEOUT"]), max(1, outside // 10)))
        env |= {"PROOF_OFFLINE": "true"} if proof_offline else {}
        env |= {"PROOF_PYTHON_DOWNLOADS": "true"} if proof_python_downloads else {}
        env |= {"PROOF_INDEX_URL": proof_index_url} if proof_index_url else {}
        env |= {"PROOF_FIND_LINKS": proof_find_links} if proof_find_links else {}
    return env


def mlflow_client_timeouts(route: Route) -> dict[str, str]:
    """MLflow's client timeout and retries for `route`'s function, so that a hung MLflow costs a record seconds.

    MLflow reads `MLFLOW_HTTP_REQUEST_TIMEOUT` (seconds, for connect and read; default 120),
    `MLFLOW_HTTP_REQUEST_MAX_RETRIES` (default 7), `MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR` (default 2) and
    `MLFLOW_HTTP_REQUEST_BACKOFF_JITTER` (default 1.0) (`mlflow/environment_variables.py`; used by `http_request` in
    `mlflow/utils/rest_utils.py`). Its defaults would let one request to a server that accepts and never answers
    wait 8 × 120 s plus backoff: every record would run into the function timeout.

    - Timeout: half the function timeout shared by a full batch (`timeout // (2 × batch size)`, at least 1 s): a
      batch whose every record meets a hung MLflow ends with every record reported for retry (`Unavailable`) in
      at most half the timeout (register and validate: 60 s, 10 records: 3 s; aliases: 1 record: 30 s).
    - No client retries: MLflow's urllib3 `Retry` resends on read errors whatever the method (`allowed_methods=None`
      in `mlflow/utils/request_utils.py`), so a create whose answer came late could be sent twice and make a second
      version. The queue retries instead, with backoff (`functions.domain.delivery`), and a retry goes through the
      registration's lookup of an existing version.
    """
    per_request = max(1, route.timeout_seconds // (2 * max(1, route.batch_size)))
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(per_request),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    }


def mlflow_client_environment(sigv4: bool, insecure_tls: bool, server_cert_path: str) -> dict[str, str]:
    """MLflow's variables for SigV4, TLS verification and a private CA; verification stays on unless told."""
    env = {}
    if sigv4:
        env["MLFLOW_TRACKING_AWS_SIGV4"] = "true"
    if insecure_tls:
        env["MLFLOW_TRACKING_INSECURE_TLS"] = "true"
    if server_cert_path:
        env["MLFLOW_TRACKING_SERVER_CERT_PATH"] = server_cert_path
    return env


# --- the webhook receiver (an HTTP endpoint, not a queue route) ---------------------------------------------------

DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300
DEFAULT_WEBHOOK_MAX_BODY_BYTES = 64 * 1024
DEFAULT_WEBHOOK_DELIVERY_TTL_SECONDS = 3600


class WebhookSettings(BaseModel):
    """What the webhook function needs: where to publish, the HMAC secret, and its limits."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ARTIFACT_BUCKET: NonEmpty
    EVENT_BUS_NAME: NonEmpty
    EVENT_SOURCE: NonEmpty = EVENT_SOURCE
    IDEMPOTENCY_TABLE: NonEmpty
    WEBHOOK_SECRET_ARN: NonEmpty
    WEBHOOK_TOLERANCE_SECONDS: Annotated[int, Field(ge=30, le=3600)] = DEFAULT_WEBHOOK_TOLERANCE_SECONDS
    WEBHOOK_MAX_BODY_BYTES: Annotated[int, Field(ge=1024, le=1024 * 1024)] = DEFAULT_WEBHOOK_MAX_BODY_BYTES
    # Delivery ids are remembered at least as long as a signed timestamp is accepted, so a replay is always seen.
    WEBHOOK_DELIVERY_TTL_SECONDS: Annotated[int, Field(ge=3600)] = DEFAULT_WEBHOOK_DELIVERY_TTL_SECONDS


@lru_cache(maxsize=1)
def load_webhook_settings() -> WebhookSettings:
    return WebhookSettings.model_validate(dict(os.environ))


def webhook_function_environment(
    *,
    bucket: str,
    event_bus_name: str,
    idempotency_table: str,
    secret_arn: str,
    log_level: str = "INFO",
    tracing: bool = False,
) -> dict[str, str]:
    """The environment of the webhook function, on AWS and in the sandbox alike."""
    return {
        "ARTIFACT_BUCKET": bucket,
        "EVENT_BUS_NAME": event_bus_name,
        "IDEMPOTENCY_TABLE": idempotency_table,
        "WEBHOOK_SECRET_ARN": secret_arn,
        "WEBHOOK_TOLERANCE_SECONDS": str(DEFAULT_WEBHOOK_TOLERANCE_SECONDS),
        "WEBHOOK_MAX_BODY_BYTES": str(DEFAULT_WEBHOOK_MAX_BODY_BYTES),
        "POWERTOOLS_SERVICE_NAME": "registry-autopilot-webhook",
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": log_level,
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
    }
