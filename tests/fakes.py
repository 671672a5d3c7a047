"""In-memory implementations of the domain's ports, for unit tests (fakes over mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from pydantic import BaseModel

from functions.domain.errors import Unavailable
from functions.domain.policy import Check
from functions.domain.ports import (
    ArtifactStore,
    EventPublisher,
    LoggedModelInfo,
    ModelInfo,
    ModelProofs,
    ModelRegistry,
    ObjectMissing,
    ObjectTooLarge,
    RegistryRequirements,
    RunInfo,
    VersionInfo,
    copy_source,
)
from functions.domain.reference import DATASET_MISSING, DatasetVersion, ReferenceScore
from functions.domain.reference import failure as reference_failure
from functions.domain.reference_policy import ReferenceRule
from functions.domain.tags import IDENTITY_TAG


class FakeRegistry(ModelRegistry):
    """An in-memory registry. `unity_catalog=True` behaves like Unity Catalog: its requirements, and versions
    whose source is a copy in the registry's own storage (so only the identity tag can find them again).

    It answers as the adapter on a real MLflow server does (`tests/integration/test_registry_contract.py` runs the
    same tests against both): a read of something missing is None, a write to a version or model that does not
    exist is `Unavailable` (MLflow's RESOURCE_DOES_NOT_EXIST, which the adapter cannot tell from an outage)."""

    def __init__(self, *, unity_catalog: bool = False) -> None:
        self.unity_catalog = unity_catalog
        if unity_catalog:
            self.requirements = RegistryRequirements(three_level_names=True, signature_required=True)
        self.find_calls: list[dict] = []
        self.logged_models: dict[str, LoggedModelInfo] = {}
        self.runs: dict[str, RunInfo] = {}
        self.models: set[str] = set()
        self.versions: list[VersionInfo] = []
        self.create_calls: list[dict] = []
        self.copy_calls: list[tuple[str, str, str]] = []
        self.aliases: dict[tuple[str, str], str] = {}
        self.tag_writes: list[tuple[str, str, dict]] = []
        self.alias_writes: list[tuple[str, str, str]] = []
        self.model_tags: dict[str, dict[str, str]] = {}
        self.stages: dict[tuple[str, str], str] = {}
        self.run_reads: list[str] = []
        self.model_reads: list[str] = []
        self.down = False
        self.workspace: str | None = None
        """The workspace of the `in_workspace` block being run (None outside any)."""
        self.calls_by_workspace: list[str | None] = []
        """The workspace each registry call was made in, in order (one store for all: the fake does not scope)."""

    @contextmanager
    def in_workspace(self, workspace: str | None) -> Iterator[None]:
        outer, self.workspace = self.workspace, workspace
        try:
            yield
        finally:
            self.workspace = outer

    def _check(self) -> None:
        self.calls_by_workspace.append(self.workspace)
        if self.down:
            raise Unavailable("registry_unavailable", "MLflow is down")

    def _existing(self, model_name: str, version: str) -> int:
        """The index of the version in `versions`; `Unavailable` as from MLflow when there is none."""
        for index, existing in enumerate(self.versions):
            if existing.model_name == model_name and existing.version == version:
                return index
        raise Unavailable(
            "registry_unavailable", f"RESOURCE_DOES_NOT_EXIST: Model Version (name={model_name}, version={version})"
        )

    def get_logged_model(self, model_id: str) -> LoggedModelInfo | None:
        self._check()
        return self.logged_models.get(model_id)

    def get_run(self, run_id: str) -> RunInfo | None:
        self._check()
        self.run_reads.append(run_id)
        return self.runs.get(run_id)

    def find_version(
        self, model_name: str, sources: list[str], identity: str, *, not_before: datetime | None = None
    ) -> VersionInfo | None:
        self._check()
        self.find_calls.append({"name": model_name, "sources": list(sources), "identity": identity})
        # An MLflow server is searched by source only, newest version first; Unity Catalog also by identity.
        return next(
            (
                v
                for v in sorted(self.versions, key=lambda v: int(v.version), reverse=True)
                if v.model_name == model_name
                and (v.source in sources or (self.unity_catalog and v.tags.get(IDENTITY_TAG) == identity))
            ),
            None,
        )

    def registered_identities(self, bucket: str) -> set[str] | None:
        self._check()
        if self.unity_catalog:
            return None
        return {
            v.tags[IDENTITY_TAG] for v in self.versions if v.tags.get(IDENTITY_TAG, "").startswith(f"s3://{bucket}/")
        }

    def get_version(self, model_name: str, version: str) -> VersionInfo | None:
        self._check()
        return next((v for v in self.versions if v.model_name == model_name and v.version == version), None)

    def get_alias_version(self, model_name: str, alias: str) -> VersionInfo | None:
        self._check()
        number = self.aliases.get((model_name, alias))
        return self.get_version(model_name, number) if number else None

    def set_version_tags(self, model_name: str, version: str, tags: dict[str, str]) -> None:
        self._check()
        index = self._existing(model_name, version)
        self.tag_writes.append((model_name, version, dict(tags)))
        self.versions[index] = replace(self.versions[index], tags={**self.versions[index].tags, **tags})

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        self._check()
        self._existing(model_name, version)
        self.aliases[(model_name, alias)] = version
        self.alias_writes.append((model_name, alias, version))

    def get_model(self, model_name: str) -> ModelInfo | None:
        self._check()
        self.model_reads.append(model_name)
        if not self._model_exists(model_name):
            return None
        aliases = {alias: number for (name, alias), number in self.aliases.items() if name == model_name}
        return ModelInfo(model_name, aliases, dict(self.model_tags.get(model_name, {})))

    def _model_exists(self, model_name: str) -> bool:
        known = model_name in self.models or model_name in self.model_tags
        return (
            known
            or any(name == model_name for name, _ in self.aliases)
            or any(v.model_name == model_name for v in self.versions)
        )

    def set_model_tag(self, model_name: str, key: str, value: str) -> None:
        self._check()
        if not self._model_exists(model_name):
            raise Unavailable("registry_unavailable", f"RESOURCE_DOES_NOT_EXIST: Registered Model {model_name}")
        self.model_tags.setdefault(model_name, {})[key] = value

    def delete_version_tag(self, model_name: str, version: str, key: str) -> None:
        self._check()
        for index, existing in enumerate(self.versions):
            if existing.model_name == model_name and existing.version == version:
                tags = {k: v for k, v in existing.tags.items() if k != key}
                self.versions[index] = replace(existing, tags=tags)

    def transition_stage(self, model_name: str, version: str, stage: str) -> None:
        self._check()
        self._existing(model_name, version)
        self.stages[(model_name, version)] = stage

    def create_version(self, model_name, source, *, run_id, model_id, tags) -> VersionInfo:  # type: ignore[no-untyped-def]
        self._check()
        self.create_calls.append({"name": model_name, "source": source, "run_id": run_id, "model_id": model_id})
        self.models.add(model_name)
        number = str(sum(1 for v in self.versions if v.model_name == model_name) + 1)
        stored_source = f"dbfs:/uc/{model_name}/{number}" if self.unity_catalog else source
        version = VersionInfo(
            model_name=model_name,
            version=number,
            source=stored_source,
            run_id=run_id,
            tags=dict(tags),
            model_id=model_id,
        )
        self.versions.append(version)
        return version

    def copy_version(self, source_model: str, source_version: str, target_model: str) -> VersionInfo:
        """As MLflow's `copy_model_version`: the next version of the target, with the source's tags, run and model."""
        self._check()
        source = self.get_version(source_model, source_version)
        if source is None:
            raise Unavailable("registry_unavailable", f"Failed to fetch model version {source_model} v{source_version}")
        self.copy_calls.append((source_model, source_version, target_model))
        return self.create_version(
            target_model,
            copy_source(source_model, source_version),
            run_id=source.run_id,
            model_id=source.model_id,
            tags=source.tags,
        )


class FakeArtifactStore(ArtifactStore):
    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})  # "bucket/key" -> bytes

    def put(self, bucket: str, key: str, content: bytes = b"x") -> None:
        self.objects[f"{bucket}/{key}"] = content

    def read(self, bucket: str, key: str, *, version_id: str | None, max_bytes: int) -> bytes:
        try:
            content = self.objects[f"{bucket}/{key}"]
        except KeyError:
            raise ObjectMissing(key) from None
        if len(content) > max_bytes:
            raise ObjectTooLarge(key)
        return content

    def list_keys(self, bucket: str, prefix: str) -> set[str]:
        start = f"{bucket}/{prefix}"
        return {path[len(bucket) + 1 :] for path in self.objects if path.startswith(start)}


class FakeEventPublisher(EventPublisher):
    def __init__(self) -> None:
        self.published: list[BaseModel] = []

    def publish(self, detail: BaseModel) -> None:
        self.published.append(detail)


@dataclass
class FakeQueue:
    """Records what the SQS batch runner did with each message."""

    requeued: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)
    visibility: list[tuple[str, int]] = field(default_factory=list)

    def requeue(self, body: str, *, delay_seconds: int, attributes: dict[str, str]) -> None:
        self.requeued.append({"body": body, "delay_seconds": delay_seconds, "attributes": attributes})

    def dead_letter(self, body: str, *, attributes: dict[str, str]) -> None:
        self.dead_letters.append({"body": body, "attributes": attributes})

    def retry_after(self, receipt_handle: str, seconds: int) -> None:
        self.visibility.append((receipt_handle, seconds))


class OncePerIdentity:
    """The idempotency layer in memory: one completed result per payload identity."""

    def __init__(self, work) -> None:  # type: ignore[no-untyped-def]
        self._work = work
        self.results: dict[str, dict] = {}

    def __call__(self, payload: dict, context=None) -> dict:  # type: ignore[no-untyped-def]
        if payload["identity"] not in self.results:
            self.results[payload["identity"]] = self._work(payload)
        return self.results[payload["identity"]]


class FakeModelProofs(ModelProofs):
    """Returns `checks` for every proof and records what was proved (bucket, prefix, has_signature, missing_example).

    Reference data: `datasets` maps a key to its version (absent: `dataset_missing`); `scores` maps a model prefix to
    its score or failed check; `scored` records every (prefix, dataset source) scored."""

    def __init__(
        self,
        checks: list[Check] | None = None,
        *,
        datasets: dict[str, DatasetVersion] | None = None,
        scores: dict[str, ReferenceScore | Check] | None = None,
    ) -> None:
        self.checks = list(checks or [])
        self.proved: list[tuple[str, str, bool, str]] = []
        self.datasets = dict(datasets or {})
        self.scores = dict(scores or {})
        self.scored: list[tuple[str, str]] = []
        self.begun = 0
        """How many versions' proofs began (`begin`)."""

    def begin(self) -> None:
        self.begun += 1

    def dataset(self, bucket: str, key: str) -> DatasetVersion | Check:
        found = self.datasets.get(key)
        return found if found else reference_failure(DATASET_MISSING, f"s3://{bucket}/{key} does not exist")

    def score(self, bucket: str, prefix: str, dataset: DatasetVersion, rule: ReferenceRule) -> ReferenceScore | Check:
        self.scored.append((prefix, dataset.source))
        return self.scores[prefix]

    def prove(self, bucket: str, prefix: str, *, has_signature: bool, missing_example: str) -> list[Check]:
        self.proved.append((bucket, prefix, has_signature, missing_example))
        return list(self.checks)
