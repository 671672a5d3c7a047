"""Registering an uploaded model: exactly once, and only when the upload is complete.

`Registrar.register` takes one uploaded MLmodel object and ends in one of:
- an `Outcome` ("registered", "already_registered" or "skipped"),
- `Rejected` (bad input: dead-letter), `NotReady` (incomplete upload: come back later), or
- `Unavailable` (a dependency failed: retry).

Exactly once rests on three layers: the idempotency record around this call (handler), the lookup of
an existing version by source below, and tolerance of "already exists" when the registered model is
created with its first version.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from functions.domain.errors import NotReady, Rejected
from functions.domain.events import version_event
from functions.domain.layouts import (
    LoggedModelArtifact,
    ModelLocation,
    PlainUpload,
    RunArtifact,
    check_key,
    check_model_name,
    classify,
    skip_reason,
    workspace_of,
)
from functions.domain.mlmodel import MLmodel, parse_mlmodel
from functions.domain.ports import (
    ArtifactStore,
    EventPublisher,
    LoggedModelInfo,
    ModelRegistry,
    ObjectMissing,
    ObjectTooLarge,
    RunInfo,
    VersionInfo,
)
from functions.domain.tags import (
    BACKFILL_TAG,
    IDENTITY_TAG,
    MODEL_VERSIONS_TAG,
    REGISTERED_BY,
    REGISTERED_BY_TAG,
    WORKSPACE_TAG,
    origin_tag,
)
from functions.models.events import ArtifactOrigin, ModelVersionRegistered

_CORRELATION_NAMESPACE = uuid.UUID("6f1d3c52-8f0e-4d7e-9a51-3c1f0e3b7a10")


@dataclass(frozen=True)
class UploadedObject:
    """One S3 object, as its `Object Created` event describes it."""

    bucket: str
    key: str
    etag: str = ""
    version_id: str | None = None
    size: int | None = None
    uploaded_at: datetime | None = None
    replay_name: str | None = None
    backfill: str | None = None
    """Set when `python -m ops backfill` sent the event: one of `functions.domain.tags.BACKFILL_MODES`."""

    @property
    def identity(self) -> str:
        """Bucket, key and object version (or etag): the same for every delivery of one upload."""
        return f"s3://{self.bucket}/{self.key}#{self.version_id or self.etag}"

    @property
    def correlation_id(self) -> str:
        """Stable per upload, so duplicate deliveries and replays share it."""
        return str(uuid.uuid5(_CORRELATION_NAMESPACE, self.identity))

    def as_payload(self) -> dict:
        """JSON-ready form (the idempotency layer hashes its `identity`)."""
        return {
            "identity": self.identity,
            "bucket": self.bucket,
            "key": self.key,
            "etag": self.etag,
            "version_id": self.version_id,
            "size": self.size,
            "uploaded_at": self.uploaded_at.isoformat() if self.uploaded_at else None,
            "replay_name": self.replay_name,
            "backfill": self.backfill,
        }

    @classmethod
    def from_payload(cls, payload: dict) -> UploadedObject:
        uploaded_at = payload.get("uploaded_at")
        return cls(
            bucket=payload["bucket"],
            key=payload["key"],
            etag=payload.get("etag") or "",
            version_id=payload.get("version_id"),
            size=payload.get("size"),
            uploaded_at=datetime.fromisoformat(uploaded_at) if uploaded_at else None,
            replay_name=payload.get("replay_name"),
            backfill=payload.get("backfill"),
        )


@dataclass(frozen=True)
class RegistrationConfig:
    bucket: str
    artifact_root_prefix: str
    model_name_tag: str
    experiment_model_names: dict[str, str] = field(default_factory=dict)
    mlmodel_max_bytes: int = 1024 * 1024
    max_pending_seconds: int = 6 * 3600
    name_grace_seconds: int = 120


@dataclass(frozen=True)
class Outcome:
    status: Literal["registered", "already_registered", "skipped"]
    reason: str = ""
    model_name: str | None = None
    version: str | None = None
    source_uri: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "status": self.status,
            "reason": self.reason,
            "model_name": self.model_name,
            "version": self.version,
            "source_uri": self.source_uri,
        }


@dataclass(frozen=True)
class _Target:
    """What the upload is: its registered model name and what the tracking server knows of it."""

    model_name: str
    run_id: str | None
    model_id: str | None
    known_run: bool
    known_model: bool
    logged_model: LoggedModelInfo | None
    workspace: str | None = None
    """The MLflow workspace of the key: the version is registered there, and it is recorded as `origin.workspace`."""


class Registrar:
    def __init__(
        self,
        config: RegistrationConfig,
        *,
        registry: ModelRegistry,
        artifacts: ArtifactStore,
        events: EventPublisher,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._registry = registry
        self._artifacts = artifacts
        self._events = events
        self._now = now

    def register(self, obj: UploadedObject) -> Outcome:
        if obj.bucket != self._config.bucket:
            raise Rejected("foreign_bucket", f"event is for bucket {obj.bucket!r}, not {self._config.bucket!r}")
        if obj.key.endswith("/"):
            # A folder marker (the S3 console's "Create folder" writes a zero-byte object named "<prefix>/"): no
            # model, and not an error. The register rule's `/MLmodel` suffix keeps them out on AWS; a replayed or
            # hand-sent one is skipped here rather than dead-lettered. Hostile keys are still refused.
            check_key(obj.key[:-1])
            return Outcome("skipped", reason="folder_marker")
        check_key(obj.key)
        location = classify(obj.key, artifact_root_prefix=self._config.artifact_root_prefix)
        if location is None:
            return Outcome(
                "skipped", reason=skip_reason(obj.key, artifact_root_prefix=self._config.artifact_root_prefix)
            )
        if obj.size == 0:
            raise Rejected("malformed_mlmodel", "MLmodel is a zero-byte object")
        # Under `<root>/workspaces/<workspace>/`, the run, the logged model and the registered model all live in that
        # MLflow workspace: every registry call of this upload is made there.
        with self._registry.in_workspace(workspace_of(location)):
            return self._register(obj, location)

    def _register(self, obj: UploadedObject, location: ModelLocation) -> Outcome:
        mlmodel = self._read_mlmodel(obj)
        if mlmodel is None:
            return Outcome("skipped", reason="object_gone")
        target = self._resolve_target(location, mlmodel)
        if target is None:
            # log_model(registered_model_name=...) registers just after the upload: give it a moment.
            if self._age(obj) < self._config.name_grace_seconds:
                raise NotReady("no_model_name_yet", "no registered model name yet (tag, log_model or mapping)")
            return Outcome("skipped", reason="no_model_name")

        self._check_complete(obj, location, mlmodel, target)
        self._check_registry_requirements(target, mlmodel)
        source_uri = f"s3://{obj.bucket}/{location.model_dir}"
        sources = [source_uri] + ([f"models:/{target.model_id}"] if target.model_id else [])
        existing = self._registry.find_version(target.model_name, sources, obj.identity, not_before=obj.uploaded_at)
        if existing is not None:
            self._emit(obj, existing, target, already_registered=True)
            return Outcome("already_registered", "", existing.model_name, existing.version, existing.source)

        version = self._registry.create_version(
            target.model_name,
            source_uri,
            run_id=target.run_id if target.known_run else None,
            model_id=target.model_id if target.known_model else None,
            tags=self._origin_tags(obj, target),
        )
        self._emit(obj, version, target, already_registered=False)
        return Outcome("registered", "", version.model_name, version.version, version.source)

    def _read_mlmodel(self, obj: UploadedObject) -> MLmodel | None:
        limit = self._config.mlmodel_max_bytes
        if obj.size is not None and obj.size > limit:
            raise Rejected("mlmodel_too_large", f"MLmodel is {obj.size} bytes; the cap is {limit}")
        try:
            content = self._artifacts.read(obj.bucket, obj.key, version_id=obj.version_id, max_bytes=limit)
        except ObjectTooLarge:
            raise Rejected("mlmodel_too_large", f"MLmodel is larger than the cap of {limit} bytes") from None
        except ObjectMissing:
            return None
        return parse_mlmodel(content)

    def _resolve_target(self, location: ModelLocation, mlmodel: MLmodel) -> _Target | None:
        if isinstance(location, PlainUpload):
            run = self._registry.get_run(mlmodel.run_id) if mlmodel.run_id else None
            logged = self._registry.get_logged_model(mlmodel.model_id) if mlmodel.model_id else None
            return _Target(
                model_name=check_model_name(location.model_name),
                run_id=mlmodel.run_id,
                model_id=mlmodel.model_id,
                known_run=run is not None,
                known_model=logged is not None,
                logged_model=logged,
            )
        if isinstance(location, LoggedModelArtifact):
            logged = self._registry.get_logged_model(location.model_id)
            run_id = (logged.source_run_id if logged else None) or mlmodel.run_id
            run = self._registry.get_run(run_id) if run_id else None
            experiment = (logged.experiment_id if logged else None) or (run.experiment_id if run else None)
            name = self._model_name(logged, run, experiment or location.experiment_id)
            model_id: str | None = location.model_id
        else:
            assert isinstance(location, RunArtifact)  # nosec B101: narrows a closed union for the type checker
            logged = self._registry.get_logged_model(mlmodel.model_id) if mlmodel.model_id else None
            run_id = location.run_id
            run = self._registry.get_run(run_id)
            experiment = (run.experiment_id if run else None) or location.experiment_id
            name = self._model_name(logged, run, experiment)
            model_id = mlmodel.model_id
        if name is None:
            return None
        return _Target(
            model_name=check_model_name(name),
            run_id=run_id,
            model_id=model_id,
            known_run=run is not None,
            known_model=logged is not None,
            logged_model=logged,
            workspace=location.workspace,
        )

    def _model_name(self, logged: LoggedModelInfo | None, run: RunInfo | None, experiment: str | None) -> str | None:
        """The name tag on the logged model, then on its run; then the model `log_model` registered it
        under (`registered_model_name=`); then the experiment's mapping in the configuration."""
        tag = self._config.model_name_tag
        for tags in (logged.tags if logged else {}, run.tags if run else {}):
            if tags.get(tag):
                return tags[tag]
        already = _registered_names(logged.tags.get(MODEL_VERSIONS_TAG) if logged else None)
        if already:
            return already[0]
        return self._config.experiment_model_names.get(experiment) if experiment else None

    def _check_complete(self, obj: UploadedObject, location: ModelLocation, mlmodel: MLmodel, target: _Target) -> None:
        if isinstance(location, LoggedModelArtifact) and target.logged_model is not None:
            status = target.logged_model.status
            if status == "READY":
                return
            if status == "FAILED":
                raise Rejected("logged_model_failed", f"logged model {location.model_id} is FAILED in MLflow")
            self._defer(obj, f"logged model {location.model_id} is {status}, not READY")
            return
        present = self._artifacts.list_keys(obj.bucket, f"{location.model_dir}/")
        relative = {key[len(location.model_dir) + 1 :] for key in present}
        missing = sorted(path for path in mlmodel.referenced_paths if not _exists(path, relative))
        if missing:
            self._defer(obj, f"files named by the MLmodel flavors are not uploaded yet: {', '.join(missing)}")

    def _check_registry_requirements(self, target: _Target, mlmodel: MLmodel) -> None:
        """What the registry would refuse (Unity Catalog: three-level names, a full signature), refused here first."""
        requirements = self._registry.requirements
        if requirements.three_level_names and len(target.model_name.split(".")) != 3:
            raise Rejected(
                "invalid_model_name",
                f"the registry (Unity Catalog) needs catalog.schema.model names; got {target.model_name!r}",
            )
        if requirements.signature_required and not mlmodel.has_full_signature:
            raise Rejected(
                "missing_signature",
                "the registry (Unity Catalog) needs a model signature with inputs and outputs; log the model with "
                "signature=... or input_example=...",
            )

    def _age(self, obj: UploadedObject) -> float:
        """Seconds since the upload; unknown upload times count as old, so nothing waits forever."""
        return (self._now() - obj.uploaded_at).total_seconds() if obj.uploaded_at else float("inf")

    def _defer(self, obj: UploadedObject, why: str) -> None:
        limit = self._config.max_pending_seconds
        if self._age(obj) > limit:
            # The message names the limit and the upload time, not the age: a replay of the same event says the same.
            uploaded = obj.uploaded_at.isoformat() if obj.uploaded_at else "at an unknown time"
            raise Rejected(
                "incomplete_upload",
                f"upload still incomplete more than {limit} s after it was written ({uploaded}): {why}",
            )
        raise NotReady("incomplete_upload", why)

    def _origin_tags(self, obj: UploadedObject, target: _Target) -> dict[str, str]:
        tags = {
            REGISTERED_BY_TAG: REGISTERED_BY,
            origin_tag("bucket"): obj.bucket,
            origin_tag("key"): obj.key,
            origin_tag("etag"): obj.etag,
            origin_tag("version_id"): obj.version_id or "",
            origin_tag("uploaded_at"): obj.uploaded_at.isoformat() if obj.uploaded_at else "",
            IDENTITY_TAG: obj.identity,
            origin_tag("correlation_id"): obj.correlation_id,
            # Set when EventBridge replayed the event from an archive: the version came from a replay.
            origin_tag("replay_name"): obj.replay_name or "",
            # Set when `ops backfill` sent it: whether its verdict may move aliases (functions.domain.aliases).
            BACKFILL_TAG: obj.backfill or "",
            # The MLflow workspace the key is under (see `functions.domain.layouts`).
            WORKSPACE_TAG: target.workspace or "",
        }
        # Linked when the tracking server knows them, recorded as tags when it does not.
        if target.run_id and not target.known_run:
            tags[origin_tag("run_id")] = target.run_id
        if target.model_id and not target.known_model:
            tags[origin_tag("model_id")] = target.model_id
        return {key: value for key, value in tags.items() if value}

    def _emit(self, obj: UploadedObject, version: VersionInfo, target: _Target, *, already_registered: bool) -> None:
        self._events.publish(
            version_event(
                ModelVersionRegistered,
                version,
                correlation_id=obj.correlation_id,
                run_id=target.run_id,
                model_id=target.model_id,
                replay_name=obj.replay_name,
                artifact=ArtifactOrigin(
                    bucket=obj.bucket,
                    key=obj.key,
                    etag=obj.etag,
                    version_id=obj.version_id,
                    size=obj.size,
                    uploaded_at=obj.uploaded_at,
                ),
                already_registered=already_registered,
                workspace=target.workspace,
            )
        )


def _registered_names(tag_value: str | None) -> list[str]:
    """Model names in MLflow's `mlflow.modelVersions` tag (`[{"name": ..., "version": ...}]`)."""
    if not tag_value:
        return []
    try:
        entries = json.loads(tag_value)
    except json.JSONDecodeError:
        return []
    if not isinstance(entries, list):
        return []
    return [entry["name"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("name"), str)]


def _exists(path: str, relative_keys: set[str]) -> bool:
    """A referenced path exists as a file, or as a folder with at least one file in it."""
    return path in relative_keys or any(key.startswith(f"{path}/") for key in relative_keys)
