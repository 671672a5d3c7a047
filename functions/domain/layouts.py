"""Where a model can live in the artifact bucket, and which keys are refused.

Three layouts are recognised (see docs/architecture.md, "Artifact layouts"):

- plain uploads: `models/<model-name>/<anything>/MLmodel`, registered as `<model-name>`;
- MLflow logged models: `<root>/[workspaces/<workspace>/][<experiment>/]models/<model_id>/artifacts/MLmodel`;
- MLflow run artifacts: `<root>/[workspaces/<workspace>/][<experiment>/]<run_id>/artifacts/<path>/MLmodel`.

For the two MLflow layouts the registered model's name comes from a tag or the configuration
(`functions.domain.registration`). Anything else is not a model location and is skipped (`skip_reason` says which).

`workspaces/<workspace>/` is where an MLflow server with workspaces on (`mlflow server --enable-workspaces`, MLflow
3.10+) puts a workspace's experiments: `<default artifact root>/workspaces/<workspace>/<experiment_id>` (MLflow's
"Workspace Configuration", Artifact Behavior: https://mlflow.org/docs/latest/self-hosting/workspaces/configuration;
mlflow/mlflow#19319, #19778). Workspace names follow MLflow's `WorkspaceNameValidator`: 2 to 63 characters, lowercase
letters, digits and inner hyphens, and `workspaces`, `api`, `ajax-api` and `static-files` are reserved
(`functions.models.events.workspace_name_problem`, the same rule the events' `workspace` field is checked with);
`workspaces` is never an experiment segment here either. A key under a name MLflow refuses is no model location.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from functions.domain.errors import Rejected
from functions.models.events import RESERVED_WORKSPACE_NAMES, WORKSPACE_NAME_PATTERN
from functions.routing import MLMODEL_FILE, PLAIN_UPLOAD_PREFIX

MAX_KEY_BYTES = 1024
MAX_MODEL_NAME_LENGTH = 256

# Letters, digits and "/._-": every key MLflow writes, and none that S3 event notifications URL-encode, so
# a key reads the same on AWS and in the sandbox. Quotes, spaces, "+" and "%" are refused: keys end up
# inside registry search filters, and encoded keys are ambiguous.
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9/._-]+$")
_MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MODEL_ID = r"m-[0-9a-f]{32}"
_RUN_ID = r"[0-9a-f]{32}"
_EXPERIMENT = r"[0-9A-Za-z._-]+"
WORKSPACES_DIR = "workspaces"
"""MLflow's folder of workspaces under the default artifact root (`mlflow.utils.workspace_utils.WORKSPACES_DIR_NAME`)."""
_WORKSPACE = WORKSPACE_NAME_PATTERN
# The optional workspace, then the optional experiment; `workspaces` is taken for neither.
_NOT_WORKSPACES = rf"(?!{WORKSPACES_DIR}/)"
_NOT_RESERVED = "".join(rf"(?!{re.escape(name)}/)" for name in sorted(RESERVED_WORKSPACE_NAMES))
_SCOPE = rf"(?:{WORKSPACES_DIR}/{_NOT_RESERVED}(?P<ws>{_WORKSPACE})/)?(?:{_NOT_WORKSPACES}(?P<exp>{_EXPERIMENT})/)?"


@dataclass(frozen=True)
class PlainUpload:
    model_name: str
    model_dir: str


@dataclass(frozen=True)
class LoggedModelArtifact:
    model_id: str
    experiment_id: str | None
    model_dir: str
    workspace: str | None = None
    """The MLflow workspace the key is under (`<root>/workspaces/<workspace>/`), None outside any."""


@dataclass(frozen=True)
class RunArtifact:
    run_id: str
    experiment_id: str | None
    artifact_path: str
    model_dir: str
    workspace: str | None = None
    """The MLflow workspace the key is under (`<root>/workspaces/<workspace>/`), None outside any."""


ModelLocation = PlainUpload | LoggedModelArtifact | RunArtifact


def workspace_of(location: ModelLocation) -> str | None:
    """The MLflow workspace a location is in (None for plain uploads, and outside any workspace)."""
    return None if isinstance(location, PlainUpload) else location.workspace


def check_key(key: str) -> None:
    """Refuse keys that are hostile or cannot be handled safely; raises `Rejected`."""
    if not key:
        raise Rejected("invalid_key", "object key is empty")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise Rejected("invalid_key", f"object key is longer than {MAX_KEY_BYTES} bytes")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in key):
        raise Rejected("invalid_key", "object key contains control, format or unassigned characters")
    if not key.isascii():
        raise Rejected("invalid_key", "object key contains non-ASCII characters")
    if not _KEY_PATTERN.fullmatch(key):
        raise Rejected("invalid_key", "object key may only use letters, digits and '/', '.', '_', '-'")
    segments = key.split("/")
    if key.startswith("/") or any(segment in ("", ".", "..") for segment in segments):
        raise Rejected("invalid_key", "object key has an empty, '.' or '..' path segment")


def check_model_name(name: str) -> str:
    """Refuse registered model names MLflow or a search filter would mishandle; returns the name."""
    if not name or len(name) > MAX_MODEL_NAME_LENGTH:
        raise Rejected("invalid_model_name", f"model name must be 1 to {MAX_MODEL_NAME_LENGTH} characters")
    if not _MODEL_NAME_PATTERN.fullmatch(name):
        raise Rejected(
            "invalid_model_name",
            "model name must start with a letter or digit and use only letters, digits, '.', '_' and '-'",
        )
    return name


def classify(key: str, *, artifact_root_prefix: str) -> ModelLocation | None:
    """The model location a (checked) key belongs to, or None when it is no model location."""
    if not key.endswith(f"/{MLMODEL_FILE}"):
        return None
    model_dir = key[: -len(MLMODEL_FILE) - 1]

    plain = re.fullmatch(rf"{PLAIN_UPLOAD_PREFIX}/(?P<name>[^/]+)/.+", model_dir)
    if plain:
        return PlainUpload(model_name=plain["name"], model_dir=model_dir)

    root = re.escape(artifact_root_prefix.strip("/"))
    logged = re.fullmatch(rf"{root}/{_SCOPE}models/(?P<id>{_MODEL_ID})/artifacts", model_dir)
    if logged:
        return LoggedModelArtifact(
            model_id=logged["id"], experiment_id=logged["exp"], model_dir=model_dir, workspace=logged["ws"]
        )

    run = re.fullmatch(rf"{root}/{_SCOPE}(?P<run>{_RUN_ID})/artifacts/(?P<path>.+)", model_dir)
    if run:
        return RunArtifact(
            run_id=run["run"],
            experiment_id=run["exp"],
            artifact_path=run["path"],
            model_dir=model_dir,
            workspace=run["ws"],
        )
    return None


def skip_reason(key: str, *, artifact_root_prefix: str) -> str:
    """Why `classify` found no model location: the reason the skip is logged and counted under."""
    if key.startswith(f"{artifact_root_prefix.strip('/')}/{WORKSPACES_DIR}/"):
        # Under MLflow's workspaces folder, but not a workspace layout (a name MLflow refuses, a folder MLflow does
        # not write there): told apart so an MLflow change in that layout shows in the metric.
        return "unmapped_workspace_layout"
    return "not_a_model_location"
