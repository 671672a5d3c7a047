"""The small interfaces the domain needs from the outside world.

Adapters in `functions.adapters` implement them with MLflow, S3, EventBridge and SQS; the unit tests
implement them with in-memory fakes (`tests/fakes.py`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel

from functions.domain.errors import Rejected
from functions.domain.policy import Check

if TYPE_CHECKING:  # functions.domain.reference imports this module
    from functions.domain.reference import DatasetVersion, ReferenceScore
    from functions.domain.reference_policy import ReferenceRule


@dataclass(frozen=True)
class LoggedModelInfo:
    model_id: str
    experiment_id: str
    status: str  # PENDING, READY or FAILED
    tags: dict[str, str] = field(default_factory=dict)
    source_run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    """The latest value of each metric (highest step, then latest time)."""
    artifact_location: str | None = None


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    """The latest value of each metric (MLflow keeps the one with the highest step, then latest time)."""
    has_dataset_inputs: bool = False


@dataclass(frozen=True)
class VersionInfo:
    model_name: str
    version: str
    source: str
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    model_id: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: which version holds each alias, and its tags (one registry read gives both)."""

    name: str
    aliases: dict[str, str] = field(default_factory=dict)
    """alias → version number"""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryRequirements:
    """What a registry demands of a version before it accepts it (Unity Catalog demands both)."""

    three_level_names: bool = False
    """Model names are `catalog.schema.model`."""
    signature_required: bool = False
    """The MLmodel must have a signature with inputs and outputs."""


class ModelRegistry(ABC):
    """The registry operations the pipeline uses. Unreachable registry → `Unavailable`."""

    requirements: RegistryRequirements = RegistryRequirements()

    @contextmanager
    def in_workspace(self, workspace: str | None) -> Iterator[None]:
        """Every call inside the block acts in MLflow workspace `workspace` (None: the client's default workspace).

        The domain says which workspace (the upload's key, or the event's `workspace`); a registry without MLflow
        workspaces (Unity Catalog, the in-memory fake) acts as it always does.
        """
        yield

    @abstractmethod
    def get_logged_model(self, model_id: str) -> LoggedModelInfo | None: ...

    @abstractmethod
    def get_run(self, run_id: str) -> RunInfo | None: ...

    @abstractmethod
    def find_version(
        self, model_name: str, sources: list[str], identity: str, *, not_before: datetime | None = None
    ) -> VersionInfo | None:
        """The version of `model_name` registered earlier for this upload, if any.

        That is a version whose source is one of `sources`, or (where the registry cannot search by source, or
        rewrites it) whose `functions.domain.tags.IDENTITY_TAG` is `identity`. `not_before` (the upload time) lets an adapter skip
        versions created before the upload.
        """

    def registered_identities(self, bucket: str) -> set[str] | None:
        """The `functions.domain.tags.IDENTITY_TAG` of every version registered from `bucket` (read by
        `python -m ops backfill`), or None when this registry cannot list them in bulk."""
        return None

    @abstractmethod
    def get_version(self, model_name: str, version: str) -> VersionInfo | None:
        """The version, or None when it does not exist (deleted, say)."""

    @abstractmethod
    def get_alias_version(self, model_name: str, alias: str) -> VersionInfo | None:
        """The version holding `alias`, or None when no version holds it."""

    @abstractmethod
    def set_version_tags(self, model_name: str, version: str, tags: dict[str, str]) -> None: ...

    @abstractmethod
    def set_alias(self, model_name: str, alias: str, version: str) -> None: ...

    @abstractmethod
    def get_model(self, model_name: str) -> ModelInfo | None:
        """The registered model's aliases and tags, or None when it does not exist."""

    @abstractmethod
    def set_model_tag(self, model_name: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_version_tag(self, model_name: str, version: str, key: str) -> None: ...

    @abstractmethod
    def transition_stage(self, model_name: str, version: str, stage: str) -> None:
        """Legacy workspace registries only (MLflow deprecated stages in 2.9)."""

    @abstractmethod
    def create_version(
        self,
        model_name: str,
        source: str,
        *,
        run_id: str | None,
        model_id: str | None,
        tags: dict[str, str],
    ) -> VersionInfo:
        """Create a version, and the registered model if this is its first (losing that race is fine)."""

    def copy_version(self, source_model: str, source_version: str, target_model: str) -> VersionInfo:
        """Copy a version into `target_model` (created if it does not exist) as that model's next version, with the
        source's tags, run and logged model; its source is `copy_source(source_model, source_version)`. Finding an
        earlier copy (so that none is made twice) is the caller's job: `find_version` by that source."""
        raise Rejected("copy_unsupported", f"this registry cannot copy {source_model} v{source_version}")


def copy_source(model_name: str, version: str) -> str:
    """The source MLflow gives a copied version: `models:/<name>/<version>` (`copy_model_version`)."""
    return f"models:/{model_name}/{version}"


class ObjectTooLarge(Exception):
    pass


class ObjectMissing(Exception):
    pass


class ArtifactStore(ABC):
    """Read access to the artifact bucket. Unreachable store → `Unavailable`."""

    @abstractmethod
    def read(self, bucket: str, key: str, *, version_id: str | None, max_bytes: int) -> bytes:
        """The object's bytes; `ObjectTooLarge` past `max_bytes`, `ObjectMissing` when it is gone."""

    @abstractmethod
    def list_keys(self, bucket: str, prefix: str) -> set[str]:
        """Every key under `prefix` (which ends with '/')."""


class ModelProofs(ABC):
    """Proves a model directory of the artifact bucket (`functions.domain.proof`) in a process of its own.

    Every outcome of the model is a list of checks named `proof:<stage>`, never an exception; an unreachable
    bucket → `Unavailable`."""

    @abstractmethod
    def prove(self, bucket: str, prefix: str, *, has_signature: bool, missing_example: str) -> list[Check]:
        """The proof's checks for the model whose files are under `prefix` (which ends with '/')."""

    def begin(self) -> None:  # noqa: B027 - a hook with nothing to do by default, not an abstract method
        """A new version's proofs start (`Validator.validate` calls it once per version): they may share one
        timeout from here. Nothing by default."""

    @abstractmethod
    def dataset(self, bucket: str, key: str) -> DatasetVersion | Check:
        """The current version of a reference dataset, or the failed check that says why there is none to score on
        (missing, too large)."""

    @abstractmethod
    def score(self, bucket: str, prefix: str, dataset: DatasetVersion, rule: ReferenceRule) -> ReferenceScore | Check:
        """The model under `prefix` scored on `dataset` (that exact version) in a proof process of its own, or the
        failed check with the reason (`functions.domain.reference`)."""


class EventPublisher(ABC):
    @abstractmethod
    def publish(self, detail: BaseModel) -> None:
        """Put one project event on the bus; its detail type comes from the detail model."""
