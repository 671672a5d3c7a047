"""Building the events about a model version: one factory for the fields they all take from the version."""

from __future__ import annotations

from typing import Any, TypeVar

from functions.domain.ports import VersionInfo
from functions.models.events import ModelVersionDetail

Detail = TypeVar("Detail", bound=ModelVersionDetail)


def version_event(detail: type[Detail], version: VersionInfo, *, correlation_id: str, **fields: Any) -> Detail:
    """A `detail` about `version`: its name, number, source and run as the registry has them, the correlation id,
    and the detail's own `fields` (which may also override the run, say with the one the upload names)."""
    common: dict[str, Any] = {
        "model_name": version.model_name,
        "version": version.version,
        "source_uri": version.source,
        "run_id": version.run_id,
        "correlation_id": correlation_id,
    }
    return detail(**{**common, **fields})
