"""The MLflow Model Registry behind the `ModelRegistry` port (mlflow-skinny's `MlflowClient`).

MLflow's error codes are mapped to the domain's: "does not exist" becomes `None`; a refused request (401/403)
becomes `Unavailable("registry_auth_failed")` and makes the connection re-read its secret; a request the registry
calls invalid becomes `Rejected("registry_refused")`; anything else that stops a call (server down, timeouts, 5xx)
becomes `Unavailable("registry_unavailable")`, which the queue retries.

`MlflowRegistry` serves an MLflow server (self-hosted, SageMaker) or the Databricks workspace registry. Finding an
earlier version searches by source (`source_path`), one request per candidate source. Unity Catalog's registry
(`functions.adapters.unity_catalog`) is a subclass; `functions.adapters.registry_factory` picks one for the URIs.

One registry operation is one HTTP request: reads and writes of versions, tags and aliases go through MLflow's
registry client (`MlflowClient._get_registry_client()`), because MLflow 3's `MlflowClient` first fetches the
registered model on each of them to refuse prompts (a second request per call). Prompts are refused here instead,
where the registered model is read anyway (`get_model`). `tests/integration/test_registry_requests.py` counts the
requests of each operation against a real server, so an MLflow upgrade that changes this shows up at once.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils.workspace_context import WorkspaceContext

from functions.adapters.mlflow_connection import RegistryConnection
from functions.domain.errors import PipelineError, Rejected, Unavailable
from functions.domain.ports import LoggedModelInfo, ModelInfo, ModelRegistry, RunInfo, VersionInfo, copy_source
from functions.domain.tags import IDENTITY_TAG, PROMPT_TAG, REGISTERED_BY, REGISTERED_BY_TAG

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking._model_registry.client import ModelRegistryClient

MISSING = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
"""MLflow's error codes for "does not exist"."""
_EXISTS = frozenset({"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"})
_REFUSED_CREDENTIALS = frozenset({"UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED", "PERMISSION_DENIED", "UNAUTHORIZED"})
SEARCH_PAGE = 1000
"""Versions per page when listing them all (MLflow's servers cap a page of version searches at 10,000)."""
_INVALID = frozenset({"INVALID_PARAMETER_VALUE", "BAD_REQUEST"})
_WORKSPACES_OFF = "FEATURE_DISABLED"
"""The client's refusal of a workspace when the server has workspaces off
(`mlflow.store.workspace_rest_store_mixin.WorkspaceRestStoreMixin`), and the server's refusal of the header then
(`mlflow.server.workspace_helpers.resolve_workspace_for_request_if_enabled`)."""
_NO_SUCH_WORKSPACE = re.compile(r"\bWorkspace '[^']*' not found")
"""The server's answer (RESOURCE_DOES_NOT_EXIST) for a header naming a workspace it does not have
(`mlflow.store.workspace.sqlalchemy_store.SqlAlchemyStore._get_workspace`): told apart from a missing version."""


def error_code(error: MlflowException) -> str:
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
        if self._connection is not None:
            return self._connection.client()
        assert self._fixed_client is not None  # nosec B101: __init__ sets one of the two
        return self._fixed_client

    @property
    def _registry(self) -> ModelRegistryClient:
        """The client's registry client: each call is one request (see the module's docstring)."""
        return self._client._get_registry_client()

    @contextmanager
    def in_workspace(self, workspace: str | None) -> Iterator[None]:
        """Calls in the block send `X-MLFLOW-WORKSPACE: <workspace>` (None: no header, the client's default).

        MLflow's client reads the workspace per request (`mlflow.utils.rest_utils.http_request` calls
        `get_request_workspace()`, a ContextVar, then the `MLFLOW_WORKSPACE` environment variable); `WorkspaceContext`
        sets both for the block and restores them after. The environment variable is process-wide: the functions
        make one registry call at a time per process (Lambda; the sandbox's workers are processes), which this relies
        on. The server scopes registered models, versions, runs and logged models by that header
        (`mlflow.store.model_registry.sqlalchemy_store.SqlAlchemyStore._get_active_workspace`).
        """
        if workspace is None:
            yield
            return
        try:
            context = WorkspaceContext(workspace)
            context.__enter__()
        except MlflowException as error:  # a name MLflow's WorkspaceNameValidator refuses
            raise Rejected(
                "invalid_workspace", f"MLflow refused workspace {workspace!r}: {_first_line(error)}"
            ) from None
        try:
            yield
        finally:
            context.__exit__(None, None, None)

    def _missing(self, error: MlflowException) -> bool:
        """Is `error` MLflow's "does not exist" for the thing asked for? (A missing workspace raises `Rejected`.)"""
        refusal = _workspace_refusal(error)
        if refusal is not None:
            raise refusal from error
        return error_code(error) in MISSING

    def _unavailable(self, operation: str, error: Exception) -> PipelineError:
        if isinstance(error, MlflowException) and (refusal := _workspace_refusal(error)) is not None:
            return refusal
        if isinstance(error, MlflowException) and error_code(error) in _REFUSED_CREDENTIALS:
            if self._connection is not None:
                self._connection.reset()
            return Unavailable(
                "registry_auth_failed",
                f"MLflow refused {operation} ({error_code(error)}): check the credentials secret and the identity's "
                f"permissions in the registry. {_first_line(error)}",
            )
        return Unavailable("registry_unavailable", f"MLflow {operation} failed: {_first_line(error)}")

    def get_logged_model(self, model_id: str) -> LoggedModelInfo | None:
        client = self._client
        try:
            model = client.get_logged_model(model_id)
        except MlflowException as error:
            if self._missing(error):
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
            if self._missing(error):
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

    def registered_identities(self, bucket: str) -> set[str] | None:
        """One search for the versions this project registered (by their `registered_by` tag), page by page."""
        client, found, token = self._client, set(), None
        prefix = f"s3://{bucket}/"
        while True:
            try:
                page = client.search_model_versions(
                    f"tags.`{REGISTERED_BY_TAG}` = '{REGISTERED_BY}'", max_results=SEARCH_PAGE, page_token=token
                )
            except MlflowException as error:
                raise self._unavailable("search_model_versions", error) from error
            for version in page:
                identity = self._from_registry_tags(_tags(version)).get(IDENTITY_TAG, "")
                if identity.startswith(prefix):
                    found.add(identity)
            token = page.token
            if not token:
                return found

    def get_version(self, model_name: str, version: str) -> VersionInfo | None:
        try:
            return self._to_version(self._registry.get_model_version(model_name, version))
        except MlflowException as error:
            if self._missing(error):
                return None
            raise self._unavailable("get_model_version", error) from error

    def get_alias_version(self, model_name: str, alias: str) -> VersionInfo | None:
        try:
            return self._to_version(self._registry.get_model_version_by_alias(model_name, alias))
        except MlflowException as error:
            # A missing alias is INVALID_PARAMETER_VALUE ("alias ... not found") on MLflow's own stores.
            if self._missing(error) or (error_code(error) == "INVALID_PARAMETER_VALUE" and "not found" in str(error)):
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
            if self._missing(error):
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
            if not self._missing(error):
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
            first_version = self._missing(error) or (
                error_code(error) == "PERMISSION_DENIED" and not self._model_exists(model_name)
            )
            if not first_version:
                raise self._create_error(error) from error
        try:
            self._client.create_registered_model(model_name)
        except MlflowException as error:
            if error_code(error) not in _EXISTS:
                raise self._unavailable("create_registered_model", error) from error
        try:
            return self._create_version(model_name, source, run_id=run_id, model_id=model_id, tags=tags)
        except MlflowException as error:
            raise self._create_error(error) from error

    def copy_version(self, source_model: str, source_version: str, target_model: str) -> VersionInfo:
        """MLflow's own `MlflowClient.copy_model_version(models:/<source>/<version>, target)`.

        It reads the source version, creates the target model unless it exists, and creates the version with the
        source `models:/<source>/<version>` and the source's tags, run id, run link, description and logged model
        (mlflow/store/model_registry/abstract_store.py, `AbstractStore.copy_model_version`; the Databricks
        workspace registry's store overrides it only for a `catalog.schema.model` target, which it migrates to Unity
        Catalog by downloading the artifacts).
        """
        try:
            copied = self._client.copy_model_version(copy_source(source_model, source_version), target_model)
        except MlflowException as error:
            raise self._create_error(error) from error
        return self._to_version(copied)

    def _model_exists(self, model_name: str) -> bool:
        try:
            self._client.get_registered_model(model_name)
        except MlflowException as error:
            if self._missing(error):
                return False
            raise self._unavailable("get_registered_model", error) from error
        return True

    def _create_error(self, error: MlflowException) -> Exception:
        if error_code(error) in _INVALID:
            return Rejected("registry_refused", f"MLflow refused the model version: {_first_line(error)}")
        return self._unavailable("create_model_version", error)

    def _create_version(
        self, model_name: str, source: str, *, run_id: str | None, model_id: str | None, tags: dict[str, str]
    ) -> VersionInfo:
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

    def _to_version(self, version: ModelVersion) -> VersionInfo:
        return version_info(version, tags=self._from_registry_tags(_tags(version)))


def _workspace_refusal(error: MlflowException) -> Rejected | None:
    """A request refused for its workspace: the server has workspaces off, or no such workspace. Retrying does not
    help; the record is dead-lettered with the reason (and redriven once the workspace exists or workspaces are on)."""
    if error_code(error) == _WORKSPACES_OFF:
        return Rejected(
            "workspaces_disabled",
            f"the key is under an MLflow workspace, but the registry has workspaces off: {_first_line(error)}",
        )
    if error_code(error) in MISSING and _NO_SUCH_WORKSPACE.search(str(error)):
        return Rejected("unknown_workspace", f"the registry has no such workspace: {_first_line(error)}")
    return None


def _tags(version: ModelVersion) -> dict[str, str]:
    return dict(version.tags or {})


def version_info(version: ModelVersion, tags: dict[str, str] | None = None) -> VersionInfo:
    return VersionInfo(
        model_name=version.name,
        version=str(version.version),
        source=version.source or "",
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
