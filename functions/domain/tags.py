"""The names of the MLflow tags the project writes and reads, in one place.

Version tags record where a version came from (`origin.*`, `registered_by`), its verdict (`validation.*`) and a
promotion awaiting approval (`approval.pending.<alias>`); registered-model tags keep each alias's history
(`autopilot.alias_history.<alias>`). Keys hold only letters, digits, `_` and `.`, which Unity Catalog's adapter
relies on to write `.` as `__` reversibly.
"""

from __future__ import annotations

from functions.project import PROJECT

DEFAULT_MODEL_NAME_TAG = "registry.model_name"
"""The tag on a logged model or its run naming the registered model to register it under (configurable)."""

REGISTERED_BY_TAG = "registered_by"
REGISTERED_BY = PROJECT
"""`registered_by`'s value on every version the register route creates (the webhook route ignores those)."""

ORIGIN_TAG_PREFIX = "origin."
"""The uploaded object a version was registered from: `origin.bucket`, `origin.key`, `origin.etag` ..."""
IDENTITY_TAG = f"{ORIGIN_TAG_PREFIX}identity"
"""Every version the pipeline creates carries its upload's identity in this tag (see `ModelRegistry.find_version`)."""
WORKSPACE_TAG = f"{ORIGIN_TAG_PREFIX}workspace"
"""The MLflow workspace an upload's key is under (`<root>/workspaces/<workspace>/...`), recorded on the version. The
version is registered in that workspace (`ModelRegistry.in_workspace`, MLflow's `X-MLFLOW-WORKSPACE` header), and
the events about it carry it as `workspace`, so validation and alias moves act there too; the tag is what a reader
of the registry sees of it."""

BACKFILL_TAG = f"{ORIGIN_TAG_PREFIX}backfill"
"""Set on a version `python -m ops backfill` sent: `BACKFILL_HOLD_ALIASES` (its verdict moves no alias; only
`ops promote` does) or `BACKFILL_PROMOTE` (`--promote`: its verdict moves aliases as a live upload's does)."""
BACKFILL_HOLD_ALIASES = "hold_aliases"
BACKFILL_PROMOTE = "promote"
BACKFILL_MODES = (BACKFILL_HOLD_ALIASES, BACKFILL_PROMOTE)

VALIDATION_TAG_PREFIX = "validation."
"""Every tag of a verdict starts so (`ops verdict` shows them all)."""
TAG_STATUS = f"{VALIDATION_TAG_PREFIX}status"
"""passed or failed: the gate every alias move checks, and what a registry search filters on."""
TAG_VERDICT = f"{VALIDATION_TAG_PREFIX}verdict"
"""The rest of the verdict as one JSON object: reasons, policy, policy_sha256, validated_at, correlation_id."""

PENDING_TAG_PREFIX = "approval.pending."
"""`approval.pending.<alias>` on a passed version awaiting an approver; its value is the verdict's identity."""

HISTORY_TAG_PREFIX = "autopilot.alias_history."
"""`autopilot.alias_history.<alias>` on the registered model: the alias's moves, as JSON."""

# MLflow's own tags, read only.
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
"""MLflow's tag on a logged model listing the versions registered from it, as JSON."""
PROMPT_TAG = "mlflow.prompt.is_prompt"
"""MLflow 3 keeps prompts in the model registry, marked with this registered-model tag."""


def origin_tag(field: str) -> str:
    """`origin.<field>`: one fact about the uploaded object (bucket, key, etag, version_id ...)."""
    return f"{ORIGIN_TAG_PREFIX}{field}"


def pending_tag(alias: str) -> str:
    return f"{PENDING_TAG_PREFIX}{alias}"


def history_tag(alias: str) -> str:
    return f"{HISTORY_TAG_PREFIX}{alias}"


LADDER_TAG_PREFIX = "ladder."
"""A version copied up a promotion ladder (`functions.domain.ladder`) carries its lineage in these tags."""
LADDER_SOURCE_ENVIRONMENT_TAG = f"{LADDER_TAG_PREFIX}source_environment"
LADDER_SOURCE_MODEL_TAG = f"{LADDER_TAG_PREFIX}source_model"
LADDER_SOURCE_VERSION_TAG = f"{LADDER_TAG_PREFIX}source_version"
LADDER_SOURCE_VERDICT_TAG = f"{LADDER_TAG_PREFIX}source_verdict"
"""`<status>@<validated_at>` of the source version's verdict the copy was promoted on."""
LADDER_CORRELATION_TAG = f"{LADDER_TAG_PREFIX}correlation_id"
LADDER_APPROVER_TAG = f"{LADDER_TAG_PREFIX}approver"
LADDER_PROMOTED_AT_TAG = f"{LADDER_TAG_PREFIX}promoted_at"
"""When the copy entered its environment: the start of its time there (`requires.min_hours` of the next rung)."""
LADDER_ENVIRONMENT_TAG = f"{LADDER_TAG_PREFIX}environment"
"""The environment the copy stands in; written last, so a copy without it (or with its source's) is unfinished."""
LADDER_HISTORY_TAG = "autopilot.ladder_history"
"""On a registered model: its versions' promotions up the ladder (a JSON list like an alias history, newest last:
the version, `promoted to <env>: <model> v<copy>`, who, when, the correlation id), shown by `python -m ops history`."""

REFERENCE_TAG_PREFIX = "reference.score."
"""`reference.score.<hash>` on a version: its score on one version of a policy's reference dataset, as JSON
(`functions.domain.reference`), so the holder of an alias is scored once per dataset version, not per candidate."""
