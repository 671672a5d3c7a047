"""The MLflow Model Registry behind the `ModelRegistry` port (mlflow-skinny's `MlflowClient`).

MLflow's error codes are mapped to the domain's: "does not exist" becomes `None`; a refused request (401/403)
becomes `Unavailable("registry_auth_failed")` and makes the connection re-read its secret; a request the registry
calls invalid becomes `Rejected("registry_refused")`; anything else that stops a call (server down, timeouts, 5xx)
becomes `Unavailable("registry_unavailable")`, which the queue retries.

Two flavours of registry:
- `MlflowRegistry`: an MLflow server (self-hosted, SageMaker) or the Databricks workspace registry. Finding an
  earlier version searches by source (`source_path`), one request per candidate source.
- `UnityCatalogRegistry`: Unity Catalog allows only `name=` or `run_id=` in version searches, returns no tags in
  search results and keeps its own copy of the artifacts. An earlier version is found by source, or else by the
  `origin.identity` tag (read with one `get_model_version` per version created since the upload). Tag keys are
  written with `__` for `.` and read back, and values are capped, as Unity Catalog tags require; the domain sees
  the same tags on every registry.

One registry operation is one HTTP request: reads and writes of versions, tags and aliases go through MLflow's
registry client (`MlflowClient._get_registry_client()`), because MLflow 3's `MlflowClient` first fetches the
registered model on each of them to refuse prompts (a second request per call). Prompts are refused here instead,
where the registered model is read anyway (`get_model`). `tests/integration/test_registry_requests.py` counts the
requests of each operation against a real server, so an MLflow upgrade that changes this shows up at once.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from functions.adapters.mlflow_connection import (  # noqa: F401 - re-exported for the handlers
    CLIENT_DEFAULTS,
    RegistryConnection,
    apply_client_environment,
    make_client,
)
from functions.domain.errors import Rejected, Unavailable
from functions.domain.ports import (
    IDENTITY_TAG,
    LoggedModelInfo,
    ModelInfo,
    ModelRegistry,
    RegistryRequirements,
    RunInfo,
    VersionInfo,
)
from functions.models.mlflow_backend import is_unity_catalog
from functions.settings import Settings

_MISSING = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
_EXISTS = frozenset({"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"})
_REFUSED_CREDENTIALS = frozenset({"UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED", "PERMISSION_DENIED", "UNAUTHORIZED"})
_INVALID = frozenset({"INVALID_PARAMETER_VALUE", "BAD_REQUEST"})
PROMPT_TAG = "mlflow.prompt.is_prompt"
"""MLflow 3 keeps prompts in the model registry, marked with this registered-model tag."""


def _code(error: MlflowException) -> str:
    return str(getattr(error, "error_code", "") or "")


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:500] if str(error) else type(error).__name__


class MlflowRegistry(ModelRegistry):
    """An MLflow registry reached through `client` (an `MlflowClient`, or a `RegistryConnection` that builds one)."""

    def __init__(self, client: MlflowClient | RegistryConnection) -> None:
        self._connection = client if isinstance(client, RegistryConnection) else None
        self._fixed_client = None if isinstance(client, RegistryConnection) else client

    @property
    def _client(self) -> MlflowClient:
        return self._connection.client() if self._connection is not None else self._fixed_client

    @property
    def _registry(self):  # type: ignore[no-untyped-def]
        """The client's registry client: each call is one request (see the module's docstring)."""
        return self._client._get_registry_client()

    def _unavailable(self, operation: str, error: Exception) -> Unavailable:
        if isinstance(error, MlflowException) and _code(error) in _REFUSED_CREDENTIALS:
            if self._connection is not None:
                self._connection.reset()
            return Unavailable(
                "registry_auth_failed",
                f"MLflow refused {operation} ({_code(error)}): check the credentials secret and the identity's "
                f"permissions in the registry. {_first_line(error)}",
            )
        return Unavailable("registry_unavailable", f"MLflow {operation} failed: {_first_line(error)}")

    def get_logged_model(self, model_id: str) -> LoggedModelInfo | None:
        client = self._client
        try:
            model = client.get_logged_model(model_id)
        except MlflowException as error:
            if _code(error) in _MISSING:
                return None
            raise self._unavailable("get_logged_model", error) from error
        return LoggedModelInfo(
            model_id=model.model_id,
            experiment_id=str(model.experiment_id),
            status=str(model.status),
            tags=dict(model.tags or {}),
            source_run_id=model.source_run_id,
            metrics=_latest(model.metrics or []),
            artifact_location=model.artifact_location,
        )

    def get_run(self, run_id: str) -> RunInfo | None:
        client = self._client
        try:
            run = client.get_run(run_id)
        except MlflowException as error:
            if _code(error) in _MISSING:
                return None
            raise self._unavailable("get_run", error) from error
        inputs = getattr(run, "inputs", None)
        return RunInfo(
            run_id=run.info.run_id,
            experiment_id=str(run.info.experiment_id),
            tags=dict(run.data.tags),
            metrics={key: float(value) for key, value in run.data.metrics.items()},
            has_dataset_inputs=bool(inputs and inputs.dataset_inputs),
        )

    def find_version(
        self, model_name: str, sources: list[str], identity: str, *, not_before: datetime | None = None
    ) -> VersionInfo | None:
        client = self._client
        for source in sources:
            try:
                found = client.search_model_versions(f"name='{model_name}' and source_path='{source}'", max_results=1)
            except MlflowException as error:
                raise self._unavailable("search_model_versions", error) from error
            if found:
                return self._to_version(found[0])
        return None

    def get_version(self, model_name: str, version: str) -> VersionInfo | None:
        try:
            return self._to_version(self._registry.get_model_version(model_name, version))
        except MlflowException as error:
            if _code(error) in _MISSING:
                return None
            raise self._unavailable("get_model_version", error) from error

    def get_alias_version(self, model_name: str, alias: str) -> VersionInfo | None:
        try:
            return self._to_version(self._registry.get_model_version_by_alias(model_name, alias))
        except MlflowException as error:
            # A missing alias is INVALID_PARAMETER_VALUE ("alias ... not found") on MLflow's own stores.
            if _code(error) in _MISSING or (_code(error) == "INVALID_PARAMETER_VALUE" and "not found" in str(error)):
                return None
            raise self._unavailable("get_model_version_by_alias", error) from error

    def set_version_tags(self, model_name: str, version: str, tags: dict[str, str]) -> None:
        try:
            for key, value in self._to_registry_tags(tags).items():
                self._registry.set_model_version_tag(model_name, version, key, value)
        except MlflowException as error:
            raise self._unavailable("set_model_version_tag", error) from error

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        try:
            self._registry.set_registered_model_alias(model_name, alias, version)
        except MlflowException as error:
            raise self._unavailable("set_registered_model_alias", error) from error

    def get_model(self, model_name: str) -> ModelInfo | None:
        try:
            model = self._registry.get_registered_model(model_name)
        except MlflowException as error:
            if _code(error) in _MISSING:
                return None
            raise self._unavailable("get_registered_model", error) from error
        if str((getattr(model, "_tags", None) or {}).get(PROMPT_TAG, "")).lower() == "true":  # `tags` hides it
            raise Rejected(
                "registry_refused", f"{model_name} is an MLflow prompt, not a model: the pipeline leaves it alone"
            )
        aliases = {str(alias): str(version) for alias, version in (model.aliases or {}).items()}
        return ModelInfo(name=model.name, aliases=aliases, tags=self._from_registry_tags(dict(model.tags or {})))

    def set_model_tag(self, model_name: str, key: str, value: str) -> None:
        try:
            for registry_key, registry_value in self._to_registry_tags({key: value}).items():
                self._registry.set_registered_model_tag(model_name, registry_key, registry_value)
        except MlflowException as error:
            raise self._unavailable("set_registered_model_tag", error) from error

    def delete_version_tag(self, model_name: str, version: str, key: str) -> None:
        try:
            (registry_key,) = self._to_registry_tags({key: ""})
            self._registry.delete_model_version_tag(model_name, version, registry_key)
        except MlflowException as error:
            if _code(error) not in _MISSING:
                raise self._unavailable("delete_model_version_tag", error) from error

    def transition_stage(self, model_name: str, version: str, stage: str) -> None:
        try:
            with warnings.catch_warnings():  # the deprecation is logged by the caller, once per move
                warnings.simplefilter("ignore", FutureWarning)
                self._registry.transition_model_version_stage(
                    model_name, version, stage, archive_existing_versions=False
                )
        except MlflowException as error:
            raise self._unavailable("transition_model_version_stage", error) from error

    def create_version(
        self,
        model_name: str,
        source: str,
        *,
        run_id: str | None,
        model_id: str | None,
        tags: dict[str, str],
    ) -> VersionInfo:
        """Create the version; on the model's first version, create the registered model first.

        Trying the version first saves a request on every upload but a model's first; losing the race to
        create the registered model to another worker is fine.
        """
        try:
            return self._create_version(model_name, source, run_id=run_id, model_id=model_id, tags=tags)
        except MlflowException as error:
            # MLflow's basic-auth app answers 403, not "does not exist", for a version of a model not created yet.
            first_version = _code(error) in _MISSING or (
                _code(error) == "PERMISSION_DENIED" and not self._model_exists(model_name)
            )
            if not first_version:
                raise self._create_error(error) from error
        try:
            self._client.create_registered_model(model_name)
        except MlflowException as error:
            if _code(error) not in _EXISTS:
                raise self._unavailable("create_registered_model", error) from error
        try:
            return self._create_version(model_name, source, run_id=run_id, model_id=model_id, tags=tags)
        except MlflowException as error:
            raise self._create_error(error) from error

    def _model_exists(self, model_name: str) -> bool:
        try:
            self._client.get_registered_model(model_name)
        except MlflowException as error:
            if _code(error) in _MISSING:
                return False
            raise self._unavailable("get_registered_model", error) from error
        return True

    def _create_error(self, error: MlflowException) -> Exception:
        if _code(error) in _INVALID:
            return Rejected("registry_refused", f"MLflow refused the model version: {_first_line(error)}")
        return self._unavailable("create_model_version", error)

    def _create_version(self, model_name, source, *, run_id, model_id, tags) -> VersionInfo:  # type: ignore[no-untyped-def]
        created = self._client.create_model_version(
            model_name,
            source,
            run_id=run_id,
            tags=self._to_registry_tags(tags),
            model_id=model_id,
            await_creation_for=0,
        )
        return self._to_version(created)

    def _to_registry_tags(self, tags: dict[str, str]) -> dict[str, str]:
        """Tags as the registry stores them (MLflow servers: unchanged)."""
        return dict(tags)

    def _from_registry_tags(self, tags: dict[str, str]) -> dict[str, str]:
        """Tags as the domain names them (MLflow servers: unchanged)."""
        return dict(tags)

    def _to_version(self, version) -> VersionInfo:  # type: ignore[no-untyped-def]
        return _version(version, tags=self._from_registry_tags(_tags(version)))


class UnityCatalogRegistry(MlflowRegistry):
    """Databricks Unity Catalog (`databricks-uc`): three-level names, signatures required, artifacts copied."""

    requirements = RegistryRequirements(three_level_names=True, signature_required=True)

    MAX_TAG_VALUE = 1000
    CLOCK_SKEW = timedelta(minutes=5)
    MAX_IDENTITY_READS = 50
    """Versions created since the upload whose tags are read, newest first. More than 50 versions of one model
    created after a single upload is not expected; past that, an earlier version may be missed (and duplicated)."""

    def find_version(
        self, model_name: str, sources: list[str], identity: str, *, not_before: datetime | None = None
    ) -> VersionInfo | None:
        client = self._client
        since_ms = int((not_before - self.CLOCK_SKEW).timestamp() * 1000) if not_before else None
        recent = []
        token = None
        while True:
            try:
                page = client.search_model_versions(f"name='{model_name}'", page_token=token)
            except MlflowException as error:
                raise self._unavailable("search_model_versions", error) from error
            for version in page:
                if version.name != model_name:
                    continue
                if version.source in sources:
                    return _version(version, tags={})  # UC search results carry no tags
                if since_ms is None or (version.creation_timestamp or 0) >= since_ms:
                    recent.append(version)
            token = page.token
            if not token:
                break
        recent.sort(key=lambda v: int(v.version), reverse=True)
        for version in recent[: self.MAX_IDENTITY_READS]:
            try:
                full = self._registry.get_model_version(model_name, str(version.version))
            except MlflowException as error:
                if _code(error) in _MISSING:
                    continue
                raise self._unavailable("get_model_version", error) from error
            found = self._to_version(full)
            if found.tags.get(IDENTITY_TAG) == uc_tag_value(IDENTITY_TAG, identity):
                return found
        return None

    def _to_registry_tags(self, tags: dict[str, str]) -> dict[str, str]:
        return {uc_tag_key(key): uc_tag_value(key, value) for key, value in tags.items()}

    def _from_registry_tags(self, tags: dict[str, str]) -> dict[str, str]:
        return {from_uc_tag_key(key): value for key, value in tags.items()}

    def transition_stage(self, model_name: str, version: str, stage: str) -> None:
        raise Rejected(
            "stages_unsupported",
            f"Unity Catalog has no stages (asked to move {model_name} {version} to {stage}): remove promotion.stages "
            "from the model's policy",
        )


def uc_tag_key(key: str) -> str:
    """Unity Catalog tag keys may not hold `. , - = / :`; ours hold only letters, digits, `_` and `.`, so `.` is
    written as `__` (reversibly: no key of ours holds `__`)."""
    return key.replace(".", "__")


def from_uc_tag_key(key: str) -> str:
    return key.replace("__", ".")


def uc_tag_value(key: str, value: str) -> str:
    """An identity past Unity Catalog's 1,000 characters becomes its digest (stable, so lookups still match). Other
    values pass unchanged: cutting one (an alias history is JSON) would corrupt it, so a value UC finds too long is
    refused by UC, loudly."""
    if key == IDENTITY_TAG and len(value) > UnityCatalogRegistry.MAX_TAG_VALUE:
        return f"sha256:{hashlib.sha256(value.encode()).hexdigest()}"
    return value


def _tags(version) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return dict(version.tags or {})


def _version(version, tags: dict[str, str] | None = None) -> VersionInfo:  # type: ignore[no-untyped-def]
    return VersionInfo(
        model_name=version.name,
        version=str(version.version),
        source=version.source,
        run_id=version.run_id or None,
        tags=dict(version.tags or {}) if tags is None else tags,
        model_id=getattr(version, "model_id", None) or None,
    )


def _latest(metrics: list) -> dict[str, float]:
    """The latest value per metric key: highest step, then latest timestamp."""
    latest: dict[str, tuple[int, int, float]] = {}
    for metric in metrics:
        rank = (int(metric.step or 0), int(metric.timestamp or 0), float(metric.value))
        if metric.key not in latest or rank[:2] >= latest[metric.key][:2]:
            latest[metric.key] = rank
    return {key: value for key, (_, _, value) in latest.items()}


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


def configure_client_environment(secret: str | None, tracking_uri: str | None = None) -> None:
    """Put MLflow's client settings and the secret's credentials into the environment MLflow reads.

    Kept for callers that build their client themselves; `connect_registry` does this on first use.
    """
    apply_client_environment(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", ""), secret)
