"""How a function reaches the MLflow registry: the credentials secret, MLflow's client settings and the client.

The secret (Secrets Manager, read with Powertools Parameters and cached for 5 minutes) is a JSON object:

| Backend | Secret |
|---|---|
| self-hosted, basic auth | `{"username": "...", "password": "..."}` |
| self-hosted, bearer token | `{"token": "..."}` |
| Databricks, personal access token | `{"host": "https://<workspace>", "token": "..."}` |
| Databricks, OAuth machine-to-machine | `{"host": "https://<workspace>", "client_id": "...", "client_secret": "..."}` |
| SageMaker | no secret: the function's role signs the requests |

Its values go into the variables MLflow and the Databricks SDK read (`MLFLOW_TRACKING_USERNAME`, `DATABRICKS_TOKEN`
...) and nowhere else: they are `SecretStr` from parsing on, errors name fields but never values (pydantic's
`hide_input_in_errors`), and nothing here logs. TLS verification, SigV4 and a private CA are MLflow's own variables,
set by the stack (`functions.settings.function_environment`); this module never turns verification off.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from mlflow import MlflowClient
from mlflow.environment_variables import (
    MLFLOW_TRACKING_CLIENT_CERT_PATH,
    MLFLOW_TRACKING_INSECURE_TLS,
    MLFLOW_TRACKING_SERVER_CERT_PATH,
)
from mlflow.store.model_registry.rest_store import RestStore as RegistryRestStore
from mlflow.store.tracking.rest_store import RestStore as TrackingRestStore
from mlflow.tracking._model_registry.client import ModelRegistryClient
from mlflow.tracking._tracking_service.client import TrackingServiceClient
from mlflow.utils.rest_utils import MlflowHostCreds
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from functions.domain.errors import Unavailable
from functions.models.mlflow_backend import Backend, backend_of

# The queue retries with backoff; the client must fail fast instead of retrying for minutes itself. A route's
# function gets its own values from its timeout and batch size (`functions.settings.mlflow_client_timeouts`, where
# the reasons are); these apply only where those are not set (no client retries for the same reason).
CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}

CREDENTIAL_VARIABLES = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
)
"""Every variable a secret may set; all are cleared before a secret is applied, so a rotated secret leaves no rest."""


class CredentialsError(ValueError):
    """The secret does not fit the backend. The message names fields, never their values."""


class MlflowCredentials(BaseModel):
    """The parsed secret. Unknown fields are refused, so a typo does not silently mean "no credentials"."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, str_strip_whitespace=True)

    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    host: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None

    @field_validator("host")
    @classmethod
    def _https_host(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("the Databricks host must be an https:// URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _pairs(self) -> MlflowCredentials:
        if bool(self.username) != bool(self.password):
            raise ValueError("username and password go together")
        if bool(self.client_id) != bool(self.client_secret):
            raise ValueError("client_id and client_secret go together")
        return self

    @property
    def fields(self) -> list[str]:
        return sorted(name for name in type(self).model_fields if getattr(self, name))


def parse_credentials(secret: str) -> MlflowCredentials:
    """The secret's JSON as `MlflowCredentials`; `CredentialsError` without any secret value otherwise."""
    try:
        return MlflowCredentials.model_validate_json(secret)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'secret'}: {_safe_message(e)}" for e in error.errors(include_input=False)
        )
        raise CredentialsError(f"the MLflow credentials secret is not usable: {problems}") from None


def _safe_message(error: ErrorDetails) -> str:
    # `json_invalid` messages quote the offending text; keep only the type for those.
    return "not a JSON object" if error["type"] in ("json_invalid", "model_type") else error["msg"]


def credential_environment(backend: Backend, credentials: MlflowCredentials | None) -> dict[str, str]:
    """The variables MLflow (or the Databricks SDK) reads for `backend`, from the parsed secret."""
    given = credentials.fields if credentials else []
    if backend is Backend.SAGEMAKER:
        if given:
            raise CredentialsError(
                "SageMaker managed MLflow authenticates with the function's IAM role; the credentials secret must "
                f"not be set (it has {', '.join(given)})"
            )
        return {}
    if backend is Backend.DATABRICKS:
        return _databricks_environment(credentials, given)
    if credentials is None:
        return {}
    if credentials.host or credentials.client_id:
        raise CredentialsError("host, client_id and client_secret are for the databricks tracking URI only")
    if credentials.token and credentials.username:
        raise CredentialsError("give either username and password (basic auth) or token (bearer), not both")
    if credentials.token:
        return {"MLFLOW_TRACKING_TOKEN": credentials.token.get_secret_value()}
    if credentials.username and credentials.password:
        return {
            "MLFLOW_TRACKING_USERNAME": credentials.username,
            "MLFLOW_TRACKING_PASSWORD": credentials.password.get_secret_value(),
        }
    return {}


def _databricks_environment(credentials: MlflowCredentials | None, given: list[str]) -> dict[str, str]:
    if credentials is None or not credentials.host:
        raise CredentialsError(
            "the databricks tracking URI needs a credentials secret with host and token, or host, client_id and "
            f"client_secret (it has {', '.join(given) or 'nothing'})"
        )
    if credentials.username:
        raise CredentialsError("Databricks takes a token or client_id/client_secret, not username/password")
    if credentials.token and credentials.client_id:
        raise CredentialsError("give either token or client_id/client_secret for Databricks, not both")
    env = {"DATABRICKS_HOST": credentials.host}
    if credentials.token:
        env["DATABRICKS_TOKEN"] = credentials.token.get_secret_value()
    elif credentials.client_id and credentials.client_secret:
        env["DATABRICKS_CLIENT_ID"] = credentials.client_id
        env["DATABRICKS_CLIENT_SECRET"] = credentials.client_secret.get_secret_value()
    else:
        raise CredentialsError("the Databricks secret needs token, or client_id and client_secret, beside host")
    return env


def apply_client_environment(tracking_uri: str, secret: str | None) -> None:
    """Set MLflow's fail-fast retry settings and the secret's variables (clearing those of an older secret)."""
    for name, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    credentials = parse_credentials(secret) if secret else None
    variables = credential_environment(backend_of(tracking_uri), credentials)
    for name in CREDENTIAL_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(variables)


class RegistryConnection:
    """A lazily built `MlflowClient`: the secret is read, and the environment set, on first use.

    `client()` raises `Unavailable` when the secret cannot be read (`secret_store_throttled`, `_unavailable`,
    `_refused`: `functions.adapters.secrets`) or does not fit the backend (`registry_credentials_invalid`), so the
    message is retried (and a fixed secret is picked up without a cold start). `reset()`
    drops the client after the registry refused the credentials: the next use reads the secret afresh, bypassing
    the 5-minute cache, so a rotated secret takes effect at once.
    """

    def __init__(
        self,
        *,
        tracking_uri: str,
        registry_uri: str = "",
        credentials_secret_arn: str = "",
        read_secret: Callable[..., str | None] | None = None,
    ) -> None:
        if read_secret is None:
            from functions.adapters.secrets import read_secret as read_from_secrets_manager

            read_secret = read_from_secrets_manager
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self._secret_arn = credentials_secret_arn
        self._read_secret = read_secret
        self._client: MlflowClient | None = None
        self._refresh = False
        self._lock = threading.Lock()

    def client(self) -> MlflowClient:
        with self._lock:
            if self._client is None:
                try:
                    secret = self._read_secret(self._secret_arn, force=self._refresh) if self._secret_arn else None
                    self._apply(secret)
                except CredentialsError as error:
                    raise Unavailable("registry_credentials_invalid", str(error)) from None
                except Unavailable as error:  # Secrets Manager failed: `secret_store_throttled` ... (adapters.secrets)
                    raise Unavailable(
                        error.reason, f"cannot read the MLflow credentials secret: {error.message}"
                    ) from None
                except Exception as error:  # noqa: BLE001 - Secrets Manager errors carry no secret value
                    raise Unavailable(
                        "registry_credentials_unavailable",
                        f"cannot read the MLflow credentials secret: {type(error).__name__}: {str(error)[:300]}",
                    ) from None
                self._client = self._build()
                self._refresh = False
            return self._client

    def reset(self) -> None:
        with self._lock:
            self._client = None
            self._refresh = True

    def _apply(self, secret: str | None) -> None:
        """Put the secret where the client finds it: the process's environment, which MLflow reads per request."""
        apply_client_environment(self.tracking_uri, secret)

    def _build(self) -> MlflowClient:
        return make_client(self.tracking_uri, self.registry_uri)


class RungConnection(RegistryConnection):
    """A ladder rung's MLflow server (`registry_uri`, http(s)) reached with a credentials secret of its own.

    The function's own registry reads its credentials from the environment, so these never go there: they are the
    fixed host credentials of this client's stores alone (`credentialed_client`). Everything else behaves as for the
    function's own connection: read on first use, `Unavailable` while the secret cannot be read or does not fit, read
    afresh after `reset()` (the server refused them). The secret is `{"username", "password"}` or `{"token"}`.
    """

    def __init__(
        self, *, registry_uri: str, credentials_secret_arn: str, read_secret: Callable[..., str | None] | None = None
    ) -> None:
        super().__init__(
            tracking_uri=registry_uri,
            registry_uri=registry_uri,
            credentials_secret_arn=credentials_secret_arn,
            read_secret=read_secret,
        )
        self._host_credentials: MlflowHostCreds | None = None

    def _apply(self, secret: str | None) -> None:
        if not secret:
            raise CredentialsError(f"the credentials secret of {self.registry_uri} is empty or binary")
        variables = credential_environment(backend_of(self.registry_uri), parse_credentials(secret))
        self._host_credentials = host_credentials(self.registry_uri, variables)

    def _build(self) -> MlflowClient:
        assert self._host_credentials is not None  # nosec B101: client() calls _apply first
        return credentialed_client(self.registry_uri, self._host_credentials)


def host_credentials(uri: str, variables: dict[str, str]) -> MlflowHostCreds:
    """MLflow's host credentials for `uri` from a secret's variables (`credential_environment`), with the TLS
    settings the stack gives every function (MLflow's own variables) and no SigV4 or auth plugin: only the secret."""
    return MlflowHostCreds(
        uri,
        username=variables.get("MLFLOW_TRACKING_USERNAME"),
        password=variables.get("MLFLOW_TRACKING_PASSWORD"),
        token=variables.get("MLFLOW_TRACKING_TOKEN"),
        ignore_tls_verification=MLFLOW_TRACKING_INSECURE_TLS.get(),
        client_cert_path=MLFLOW_TRACKING_CLIENT_CERT_PATH.get(),
        server_cert_path=MLFLOW_TRACKING_SERVER_CERT_PATH.get(),
    )


class _TrackingClient(TrackingServiceClient):
    def __init__(self, uri: str, store: TrackingRestStore) -> None:
        self._fixed_store = store
        super().__init__(uri)

    @property
    def store(self) -> TrackingRestStore:
        return self._fixed_store


class _RegistryClient(ModelRegistryClient):
    def __init__(self, uri: str, store: RegistryRestStore) -> None:
        self._fixed_store = store
        super().__init__(uri, uri)

    @property
    def store(self) -> RegistryRestStore:
        return self._fixed_store


class _CredentialedClient(MlflowClient):
    def __init__(self, uri: str, credentials: MlflowHostCreds) -> None:
        super().__init__(tracking_uri=uri, registry_uri=uri)
        self._tracking_client = _TrackingClient(uri, TrackingRestStore(lambda: credentials))
        self._credentialed_registry = _RegistryClient(uri, RegistryRestStore(lambda: credentials))

    def _get_registry_client(self) -> ModelRegistryClient:
        return self._credentialed_registry


def credentialed_client(uri: str, credentials: MlflowHostCreds) -> MlflowClient:
    """`MlflowClient` on the MLflow server at `uri` whose requests carry `credentials` and nothing from the environment.

    MLflow builds a REST store per URI with `partial(get_default_host_creds, uri)`, which reads the credentials from
    the environment on each request (mlflow/tracking/_model_registry/utils.py `_get_rest_store`,
    mlflow/utils/credentials.py); its stores take any `get_host_creds` callable, so this client's tracking and registry
    clients hold stores built with fixed ones. `MlflowClient` reaches them through `_tracking_client` and
    `_get_registry_client()`, which the subclass sets and overrides.
    """
    return _CredentialedClient(uri, credentials)


def make_client(tracking_uri: str, registry_uri: str | None) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or None)
