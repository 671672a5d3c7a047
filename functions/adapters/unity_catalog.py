"""Databricks Unity Catalog's registry (`databricks-uc`) behind the `ModelRegistry` port.

Unity Catalog allows only `name=` or `run_id=` in version searches, returns no tags in search results and keeps
its own copy of the artifacts. An earlier version is found by source, or else by the `origin.identity` tag (read
with one `get_model_version` per version created since the upload). Tag keys are written with `__` for `.` and
read back, and values are capped, as Unity Catalog tags require; the domain sees the same tags on every registry.
Everything else (error mapping, one request per operation) is `MlflowRegistry`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from mlflow.exceptions import MlflowException

from functions.adapters.mlflow_registry import MISSING, MlflowRegistry, error_code, version_info
from functions.domain.errors import Rejected
from functions.domain.ports import RegistryRequirements, VersionInfo
from functions.domain.tags import IDENTITY_TAG


class UnityCatalogRegistry(MlflowRegistry):
    """Databricks Unity Catalog (`databricks-uc`): three-level names, signatures required, artifacts copied."""

    requirements = RegistryRequirements(three_level_names=True, signature_required=True)

    MAX_TAG_VALUE = 1000
    CLOCK_SKEW = timedelta(minutes=5)
    MAX_IDENTITY_READS = 50
    """Versions created since the upload whose tags are read, newest first. More than 50 versions of one model
    created after a single upload is not expected; past that, an earlier version may be missed (and duplicated)."""

    @contextmanager
    def in_workspace(self, workspace: str | None) -> Iterator[None]:
        """Unity Catalog has no MLflow workspaces (its catalogs and schemas are in the name): calls act as always."""
        yield

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
                    return version_info(version, tags={})  # UC search results carry no tags
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
                if error_code(error) in MISSING:
                    continue
                raise self._unavailable("get_model_version", error) from error
            found = self._to_version(full)
            if found.tags.get(IDENTITY_TAG) == uc_tag_value(IDENTITY_TAG, identity):
                return found
        return None

    def registered_identities(self, bucket: str) -> set[str] | None:
        # Searches take only name= or run_id= and return no tags: no bulk listing (the register route still finds
        # an upload registered earlier by itself).
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
