"""What the sandbox's processes run with: the region and dummy credentials of the emulator, the repository on the
path, an environment cleared of AWS, MLflow and Powertools settings, and the packages the servers need."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator, Mapping

from functions.project import IMPORT_ROOT, ROOT, SANDBOX_REGION
from sandbox.processes import SandboxError

REGION = SANDBOX_REGION
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # nosec B105: dummy, for the local emulator
REPO_ROOT = ROOT

_REQUIRED_MODULES = {
    "moto.server": "moto[server]",
    "flask": "moto[server]",
    "mlflow.server": "mlflow (the full package, not mlflow-skinny)",
    "sqlalchemy": "mlflow (the full package, not mlflow-skinny)",
    "alembic": "mlflow (the full package, not mlflow-skinny)",
    "aws_lambda_powertools": "aws-lambda-powertools[parser]",
}
_INHERITED_PREFIXES_DROPPED = ("AWS_", "MLFLOW_", "POWERTOOLS_")


@contextlib.contextmanager
def temporary_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, then restore them (say, `Sandbox.client_environment()` for
    MLflow's fluent API, which `mlflow.set_tracking_uri` would point at the sandbox for the rest of the process)."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def base_environment() -> dict[str, str]:
    """This process's environment without AWS, MLflow or Powertools settings that could leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES_DROPPED)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), os.environ.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["DO_NOT_TRACK"] = "true"
    return env


def check_dependencies() -> None:
    """Fail with the packages to install when the sandbox's servers cannot run here."""
    missing = sorted({package for module, package in _REQUIRED_MODULES.items() if not _importable(module)})
    if missing:
        raise SandboxError(
            f"the sandbox needs {', '.join(missing)}, which cannot be imported by {sys.executable}. "
            "Install the development requirements: pip install -r requirements-dev.txt"
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
