"""The event contract: what the project puts on its bus.

One `source` (`functions.routing.EVENT_SOURCE`), one detail type per fact, and one pydantic model per
detail. Producers build these models and consumers parse them with the same classes, so a change to
the contract breaks the contract tests (`tests/unit/test_event_contract.py`) before it breaks a
deployment. Field names are snake_case in the JSON too.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

WORKSPACE_NAME_PATTERN = r"[a-z0-9][-a-z0-9]{0,61}[a-z0-9]"
"""MLflow's workspace names (`mlflow.store.workspace.abstract_store.WorkspaceNameValidator`): lowercase letters,
digits and inner hyphens, 2 to 63 characters (MLflow's pattern and its length limits in one), not one of
`RESERVED_WORKSPACE_NAMES`."""
RESERVED_WORKSPACE_NAMES = frozenset({"workspaces", "api", "ajax-api", "static-files"})
"""The names `WorkspaceNameValidator` refuses (they are path segments of MLflow's server)."""


def workspace_name_problem(name: str) -> str | None:
    """Why MLflow would refuse `name` as a workspace name (None when it would accept it)."""
    if not 2 <= len(name) <= 63:
        return f"workspace name {name[:80]!r} must be 2 to 63 characters"
    if not re.fullmatch(WORKSPACE_NAME_PATTERN, name):
        return f"workspace name {name!r} must be lowercase letters, digits and inner hyphens"
    if name in RESERVED_WORKSPACE_NAMES:
        return f"workspace name {name!r} is reserved by MLflow"
    return None


def _check_workspace(name: str) -> str:
    problem = workspace_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


WorkspaceName = Annotated[str, AfterValidator(_check_workspace)]
"""An MLflow workspace name, checked as MLflow checks it, so a bad one is refused where the event is parsed."""


class DetailType(StrEnum):
    MODEL_VERSION_REGISTERED = "Model Version Registered"
    MODEL_VERSION_VALIDATED = "Model Version Validated"
    MODEL_ALIAS_MOVED = "Model Alias Moved"
    PROMOTION_REQUESTED = "Promotion Requested"
    ROLLBACK_REQUESTED = "Rollback Requested"
    VALIDATION_REQUESTED = "Validation Requested"
    PROMOTION_PENDING = "Promotion Pending"
    ENVIRONMENT_PROMOTION_REQUESTED = "Environment Promotion Requested"
    MODEL_VERSION_PROMOTED = "Model Version Promoted"


class _Detail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArtifactOrigin(_Detail):
    """The S3 object a version was registered from."""

    bucket: str
    key: str
    etag: str = ""
    version_id: str | None = None
    size: int | None = None
    uploaded_at: datetime | None = None


class ModelVersionDetail(_Detail):
    """Fields every detail about a model version carries."""

    model_name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    source_uri: str = Field(min_length=1)
    run_id: str | None = None
    correlation_id: str = Field(min_length=1)
    replay_name: str | None = None
    workspace: WorkspaceName | None = Field(default=None, exclude_if=lambda value: value is None)
    """The MLflow workspace the version lives in (MLflow 3.10+ `--enable-workspaces`); absent: the functions' default
    workspace. Left out of the JSON when absent, so an event outside any workspace reads as before the field."""


class ModelVersionRegistered(ModelVersionDetail):
    """A model version now exists in the registry for an uploaded artifact."""

    detail_type: Literal[DetailType.MODEL_VERSION_REGISTERED] = Field(
        default=DetailType.MODEL_VERSION_REGISTERED, exclude=True
    )
    model_id: str | None = None
    artifact: ArtifactOrigin | None = None
    already_registered: bool = False
    """True when the version existed before (an earlier attempt, or `log_model(registered_model_name=...)`)."""


class CheckResult(_Detail):
    """One check of a verdict: what was observed, against which threshold, from which source."""

    name: str
    passed: bool
    skipped: bool = False
    observed: float | str | None = None
    threshold: float | str | None = None
    source: str | None = None
    message: str = ""


class ModelVersionValidated(ModelVersionDetail):
    detail_type: Literal[DetailType.MODEL_VERSION_VALIDATED] = Field(
        default=DetailType.MODEL_VERSION_VALIDATED, exclude=True
    )
    status: Literal["passed", "failed"]
    reasons: list[str] = Field(default_factory=list)
    """The messages of the failed checks (empty when passed)."""
    checks: list[CheckResult] = Field(default_factory=list)
    policy: str | None = None
    """The policy's identity: `<file>@sha256:<first 12 hex>`."""
    uploaded_at: datetime | None = None
    """When the artifact was uploaded, for a verdict on a new upload (from `Model Version Registered`): later
    steps measure their latency from it. None for re-runs (`Validation Requested`)."""
    model_id: str | None = None


class ModelAliasMoved(ModelVersionDetail):
    """An alias now points at `version` (it pointed at `previous_version`, or nothing)."""

    detail_type: Literal[DetailType.MODEL_ALIAS_MOVED] = Field(default=DetailType.MODEL_ALIAS_MOVED, exclude=True)
    alias: str
    previous_version: str | None = None
    reason: str
    actor: str
    """`autopilot` for moves on a verdict; the approver or requester otherwise."""


class PromotionPending(ModelVersionDetail):
    """A passed version awaits an approver before `alias` moves to it (`python -m ops promote`)."""

    detail_type: Literal[DetailType.PROMOTION_PENDING] = Field(default=DetailType.PROMOTION_PENDING, exclude=True)
    alias: str
    reason: str


class RequestDetail(_Detail):
    """Fields every request carries: the model it is about, and what ties it to the version's history."""

    model_name: str = Field(min_length=1)
    correlation_id: str = Field(min_length=1)
    source_uri: str | None = None
    run_id: str | None = None
    replay_name: str | None = None
    workspace: WorkspaceName | None = Field(default=None, exclude_if=lambda value: value is None)
    """The MLflow workspace the model lives in; absent (and left out of the JSON): the functions' default workspace."""


class PromotionRequested(RequestDetail):
    detail_type: Literal[DetailType.PROMOTION_REQUESTED] = Field(default=DetailType.PROMOTION_REQUESTED, exclude=True)
    version: str = Field(min_length=1)
    alias: str = Field(min_length=1)
    approver: str = Field(min_length=1)


class RollbackRequested(RequestDetail):
    detail_type: Literal[DetailType.ROLLBACK_REQUESTED] = Field(default=DetailType.ROLLBACK_REQUESTED, exclude=True)
    alias: str = Field(min_length=1)
    version: str | None = None
    """The version to roll back to; the previous holder from the alias history when absent."""
    requested_by: str = Field(min_length=1)


class EnvironmentPromotionRequested(RequestDetail):
    """Copy a version one rung up its promotion ladder and move that environment's aliases (`ops promote --to`).

    `model_name` and `version` name the version in any environment below `environment`; the version copied is
    its copy at the rung just below `environment`."""

    detail_type: Literal[DetailType.ENVIRONMENT_PROMOTION_REQUESTED] = Field(
        default=DetailType.ENVIRONMENT_PROMOTION_REQUESTED, exclude=True
    )
    version: str = Field(min_length=1)
    environment: str = Field(min_length=1)
    requested_by: str = Field(min_length=1)
    approver: str | None = None
    """Who approves, for an environment whose `requires.approval` is true."""


class ModelVersionPromoted(ModelVersionDetail):
    """A version now stands in another environment: copied there (this detail's model and version) from below."""

    detail_type: Literal[DetailType.MODEL_VERSION_PROMOTED] = Field(
        default=DetailType.MODEL_VERSION_PROMOTED, exclude=True
    )
    from_environment: str
    to_environment: str
    source_model: str
    source_version: str
    actor: str


class ValidationRequested(RequestDetail):
    """Re-run the validation gate for a version (after a policy change, say)."""

    detail_type: Literal[DetailType.VALIDATION_REQUESTED] = Field(default=DetailType.VALIDATION_REQUESTED, exclude=True)
    version: str = Field(min_length=1)
    requested_by: str = Field(min_length=1)


DETAIL_MODELS: dict[str, type[BaseModel]] = {
    DetailType.MODEL_VERSION_REGISTERED.value: ModelVersionRegistered,
    DetailType.MODEL_VERSION_VALIDATED.value: ModelVersionValidated,
    DetailType.MODEL_ALIAS_MOVED.value: ModelAliasMoved,
    DetailType.PROMOTION_REQUESTED.value: PromotionRequested,
    DetailType.ROLLBACK_REQUESTED.value: RollbackRequested,
    DetailType.VALIDATION_REQUESTED.value: ValidationRequested,
    DetailType.PROMOTION_PENDING.value: PromotionPending,
    DetailType.ENVIRONMENT_PROMOTION_REQUESTED.value: EnvironmentPromotionRequested,
    DetailType.MODEL_VERSION_PROMOTED.value: ModelVersionPromoted,
}
