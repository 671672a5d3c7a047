"""A route handler that cannot start while its marker file exists: a misconfigured function, for the sandbox's
crash-loop guard. The marker is per sandbox (named after its moto port): `marker_for(sandbox.aws_port)`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def marker_for(aws_port: int | str) -> Path:
    return Path(tempfile.gettempdir()) / f"registry-autopilot-crash-at-start-{aws_port}"


if marker_for(os.environ.get("AWS_ENDPOINT_URL", "").rsplit(":", 1)[-1]).exists():
    os._exit(7)  # what an init that crashes looks like from outside: the process ends before it polls


def handler(event: dict, context: Any) -> dict:
    return {"batchItemFailures": []}
