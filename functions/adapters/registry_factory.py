"""Which registry adapter serves a function or a command: Unity Catalog's for `databricks-uc` URIs, MLflow's otherwise."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from functions.adapters.mlflow_connection import RegistryConnection, RungConnection, make_client
from functions.adapters.mlflow_registry import MlflowRegistry
from functions.adapters.unity_catalog import UnityCatalogRegistry
from functions.domain.errors import Rejected
from functions.domain.ladder_policy import rung_credentials
from functions.domain.policy import PolicySet
from functions.models.mlflow_backend import SAGEMAKER_TRACKING_SERVER, is_unity_catalog
from functions.settings import Settings


def connect_registry(
    *,
    tracking_uri: str,
    registry_uri: str = "",
    credentials_secret_arn: str = "",
    read_secret: Callable[..., str | None] | None = None,
) -> MlflowRegistry:
    """The registry adapter for these URIs, connecting (reading the secret) on first use."""
    connection = RegistryConnection(
        tracking_uri=tracking_uri,
        registry_uri=registry_uri,
        credentials_secret_arn=credentials_secret_arn,
        read_secret=read_secret,
    )
    return _registry_class(tracking_uri, registry_uri)(connection)


def open_registry(tracking_uri: str, registry_uri: str = "") -> MlflowRegistry:
    """The registry adapter for a command run by a person (`python -m ops`).

    The client is MLflow's own, with the credentials MLflow finds in the caller's environment; unlike
    `connect_registry`, nothing in that environment is set or cleared.
    """
    return _registry_class(tracking_uri, registry_uri)(make_client(tracking_uri, registry_uri))


def _registry_class(tracking_uri: str, registry_uri: str) -> type[MlflowRegistry]:
    return UnityCatalogRegistry if is_unity_catalog(tracking_uri, registry_uri) else MlflowRegistry


def registry_from_settings(settings: Settings) -> MlflowRegistry:
    """The registry adapter a function uses, from its settings (one client per container, connected on first use)."""
    return connect_registry(
        tracking_uri=settings.MLFLOW_TRACKING_URI,
        registry_uri=settings.MLFLOW_REGISTRY_URI,
        credentials_secret_arn=settings.MLFLOW_CREDENTIALS_SECRET_ARN,
    )


def reachable_registry_uri(uri: str) -> str:
    """`uri` when it names a registry MLflow's client can reach (an MLflow server's http(s) URL, `databricks`,
    `databricks-uc`, a SageMaker tracking server's ARN); `Rejected("unknown_registry")` otherwise."""
    known = (
        uri.startswith(("https://", "http://", "databricks://", "databricks-uc://"))
        or uri in ("databricks", "databricks-uc")
        or SAGEMAKER_TRACKING_SERVER.fullmatch(uri) is not None
    )
    if not known:
        raise Rejected(
            "unknown_registry",
            f"registry_uri {uri!r} names no registry MLflow can reach (an http(s) URL, databricks, databricks-uc or a "
            "SageMaker tracking server ARN)",
        )
    return uri


def other_registry(
    uri: str, credentials_secret_arn: str | None = None, read_secret: Callable[..., str | None] | None = None
) -> MlflowRegistry:
    """The registry of a ladder rung in another tracking server or workspace (`registry_uri`), for a function.

    With the rung's `credentials_secret`, an http(s) MLflow server is reached with that secret alone
    (`mlflow_connection.RungConnection`). Without one it is MLflow's client on that URI with the credentials the
    function's own connection put in the environment (`mlflow_connection.apply_client_environment`: the same secret,
    or the function's IAM role on SageMaker); it sets and clears nothing itself, since those variables are
    process-wide and the function's own registry needs them. An unreachable registry is
    `Unavailable("registry_unavailable")` on its first call, as for the functions' own.
    """
    reachable_registry_uri(uri)
    if credentials_secret_arn:
        connection = RungConnection(
            registry_uri=uri, credentials_secret_arn=credentials_secret_arn, read_secret=read_secret
        )
        return MlflowRegistry(connection)
    if uri.startswith("databricks-uc"):
        return UnityCatalogRegistry(make_client("databricks", uri))
    return _registry_class(uri, "")(make_client(uri, None))


def rung_registries(
    policies: PolicySet, read_secret: Callable[..., str | None] | None = None
) -> Callable[[str], MlflowRegistry]:
    """`other_registry` for each `registry_uri` of the policies' ladders, with the credentials secret its rungs name:
    one per URI, kept, so that a server that refused its credentials makes its connection read the secret afresh."""
    credentials = rung_credentials(policies.ladders)

    @cache
    def registry_at(uri: str) -> MlflowRegistry:
        secret, _key = credentials.get(uri, (None, None))
        return other_registry(uri, secret, read_secret)

    return registry_at
