"""The MLflow Model Registry behind the `ModelRegistry` port (mlflow-skinny's `MlflowClient`).

MLflow's error codes are mapped to the domain's: "does not exist" becomes `None`, anything else that
stops a call (server down, timeouts, 5xx, auth) becomes `Unavailable`, which the queue retries.
"""

from __future__ import annotations

import json
import os
import warnings

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from functions.adapters.secrets import read_secret
from functions.domain.errors import Unavailable
from functions.domain.ports import LoggedModelInfo, ModelRegistry, RunInfo, VersionInfo
from functions.settings import Settings

_MISSING = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
_EXISTS = frozenset({"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"})

# The queue retries with backoff; the client must fail fast instead of retrying for minutes itself.
CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def _code(error: MlflowException) -> str:
    return str(getattr(error, "error_code", "") or "")


def _unavailable(operation: str, error: Exception) -> Unavailable:
    message = str(error).splitlines()[0][:500] if str(error) else type(error).__name__
    return Unavailable("registry_unavailable", f"MLflow {operation} failed: {message}")


class MlflowRegistry(ModelRegistry):
    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def get_logged_model(self, model_id: str) -> LoggedModelInfo | None:
        try:
            model = self._client.get_logged_model(model_id)
        except MlflowException as error:
            if _code(error) in _MISSING:
                return None
            raise _unavailable("get_logged_model", error) from error
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
        try:
            run = self._client.get_run(run_id)
        except MlflowException as error:
            if _code(error) in _MISSING:
                return None
            raise _unavailable("get_run", error) from error
        inputs = getattr(run, "inputs", None)
        return RunInfo(
            run_id=run.info.run_id,
            experiment_id=str(run.info.experiment_id),
            tags=dict(run.data.tags),
            metrics={key: float(value) for key, value in run.data.metrics.items()},
            has_dataset_inputs=bool(inputs and inputs.dataset_inputs),
        )

    def find_version(self, model_name: str, sources: list[str]) -> VersionInfo | None:
        for source in sources:
            try:
                found = self._client.search_model_versions(
                    f"name='{model_name}' and source_path='{source}'", max_results=1
                )
            except MlflowException as error:
                raise _unavailable("search_model_versions", error) from error
            if found:
                return _version(found[0])
        return None

    def get_version(self, model_name: str, version: str) -> VersionInfo | None:
        try:
            return _version(self._client.get_model_version(model_name, version))
        except MlflowException as error:
            if _code(error) in _MISSING:
                return None
            raise _unavailable("get_model_version", error) from error

    def get_alias_version(self, model_name: str, alias: str) -> VersionInfo | None:
        try:
            return _version(self._client.get_model_version_by_alias(model_name, alias))
        except MlflowException as error:
            # A missing alias is INVALID_PARAMETER_VALUE ("alias ... not found") on MLflow's own stores.
            if _code(error) in _MISSING or (_code(error) == "INVALID_PARAMETER_VALUE" and "not found" in str(error)):
                return None
            raise _unavailable("get_model_version_by_alias", error) from error

    def set_version_tags(self, model_name: str, version: str, tags: dict[str, str]) -> None:
        try:
            for key, value in tags.items():
                self._client.set_model_version_tag(model_name, version, key, value)
        except MlflowException as error:
            raise _unavailable("set_model_version_tag", error) from error

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        try:
            self._client.set_registered_model_alias(model_name, alias, version)
        except MlflowException as error:
            raise _unavailable("set_registered_model_alias", error) from error

    def get_model_tags(self, model_name: str) -> dict[str, str]:
        try:
            return dict(self._client.get_registered_model(model_name).tags or {})
        except MlflowException as error:
            raise _unavailable("get_registered_model", error) from error

    def set_model_tag(self, model_name: str, key: str, value: str) -> None:
        try:
            self._client.set_registered_model_tag(model_name, key, value)
        except MlflowException as error:
            raise _unavailable("set_registered_model_tag", error) from error

    def delete_version_tag(self, model_name: str, version: str, key: str) -> None:
        try:
            self._client.delete_model_version_tag(model_name, version, key)
        except MlflowException as error:
            if _code(error) not in _MISSING:
                raise _unavailable("delete_model_version_tag", error) from error

    def transition_stage(self, model_name: str, version: str, stage: str) -> None:
        try:
            with warnings.catch_warnings():  # the deprecation is logged by the caller, once per move
                warnings.simplefilter("ignore", FutureWarning)
                self._client.transition_model_version_stage(model_name, version, stage)
        except MlflowException as error:
            raise _unavailable("transition_model_version_stage", error) from error

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
            if _code(error) not in _MISSING:
                raise _unavailable("create_model_version", error) from error
        try:
            self._client.create_registered_model(model_name)
        except MlflowException as error:
            if _code(error) not in _EXISTS:
                raise _unavailable("create_registered_model", error) from error
        try:
            return self._create_version(model_name, source, run_id=run_id, model_id=model_id, tags=tags)
        except MlflowException as error:
            raise _unavailable("create_model_version", error) from error

    def _create_version(self, model_name, source, *, run_id, model_id, tags) -> VersionInfo:  # type: ignore[no-untyped-def]
        created = self._client.create_model_version(
            model_name, source, run_id=run_id, tags=tags, model_id=model_id, await_creation_for=0
        )
        return _version(created)


def _version(version) -> VersionInfo:  # type: ignore[no-untyped-def]
    return VersionInfo(
        model_name=version.name,
        version=str(version.version),
        source=version.source,
        run_id=version.run_id or None,
        tags=dict(version.tags or {}),
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


def configure_client_environment(secret: str | None) -> None:
    """Put MLflow client settings and the credentials secret into the environment MLflow reads.

    The secret is a JSON object with `username` and `password` (basic auth) or `token` (bearer).
    Its values are never logged.
    """
    for name, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if not secret:
        return
    try:
        credentials = json.loads(secret)
    except json.JSONDecodeError:
        raise ValueError("the MLflow credentials secret is not a JSON object") from None
    mapping = {
        "username": "MLFLOW_TRACKING_USERNAME",
        "password": "MLFLOW_TRACKING_PASSWORD",  # nosec B105: an environment variable name, not a password
        "token": "MLFLOW_TRACKING_TOKEN",  # nosec B105: an environment variable name
    }
    for field, variable in mapping.items():
        if credentials.get(field):
            os.environ[variable] = str(credentials[field])


def make_client(tracking_uri: str, registry_uri: str | None) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or None)


def registry_from_settings(settings: Settings) -> MlflowRegistry:
    """The registry adapter a function uses: client settings and credentials applied, one client per container."""
    configure_client_environment(read_secret(settings.MLFLOW_CREDENTIALS_SECRET_ARN))
    return MlflowRegistry(make_client(settings.MLFLOW_TRACKING_URI, settings.MLFLOW_REGISTRY_URI))
