"""A deployment's settings for the sandbox (`python -m replay local --context FILE`).

The same event gives the same outcome only under the same settings: which experiment maps to which model name, the
name tag, the artifact root, how long an incomplete upload is waited for. `--context` reads them from the file a
deployment uses, `cdk.json` (its `context` object) or a plain JSON object of the same keys, and validates them with
`stacks.config.RegistryConfig`, the stack's own parser, so a key means the same in both places. Keys that do not
change what the functions do (stackName, retention, concurrency...) are accepted and ignored here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.config import CONTEXT_KEYS, ConfigError, RegistryConfig


class ContextError(ValueError):
    """The context file cannot be read or holds a bad value; the message names the file and the key."""


@dataclass(frozen=True)
class SandboxSettings:
    artifact_root_prefix: str
    function_settings: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for `functions.settings.function_environment`."""


def load_context(path: Path) -> SandboxSettings:
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ContextError(f"{path}: cannot read it: {error.strerror}") from None
    except ValueError as error:
        raise ContextError(f"{path}: not JSON: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("context"), dict):
        data = data["context"]  # a cdk.json
    if not isinstance(data, dict):
        raise ContextError(f"{path}: expected a JSON object of CDK context keys (or a cdk.json)")
    try:
        config = RegistryConfig.from_mapping({key: data.get(key) for key in CONTEXT_KEYS.values()})
    except ConfigError as error:
        raise ContextError(f"{path}: {error}") from None
    return SandboxSettings(
        artifact_root_prefix=config.artifact_root_prefix,
        function_settings={
            "model_name_tag": config.model_name_tag,
            "experiment_model_names": dict(config.experiment_model_names),
            "max_pending_seconds": config.max_pending_seconds,
        },
    )
