"""Names the whole project shares: the functions, the stack, the sandbox and the command lines take them from here."""

from __future__ import annotations

from pathlib import Path

PROJECT = "registry-autopilot"
"""The project's name: the `source` of its events, its metrics' service prefix, its `registered_by` tag value, and
the prefix of the sandbox's resource names."""

ROOT = Path(__file__).resolve().parents[1]
"""The folder holding `functions/` and `policies/`: the repository, on Lambda the bundle's root, and installed from
the wheel the `registry_autopilot` package's folder."""

PACKAGES = ("functions", "stacks", "ops", "replay", "sandbox")
"""The repository's packages that the wheel installs, as subpackages of `registry_autopilot` (build_backend/)."""

PACKAGE_PREFIX = __name__.removesuffix("functions.project")
"""How this copy's modules are named: empty in the repository and on Lambda (`functions.routing`), and
`registry_autopilot.` when installed from the wheel (`registry_autopilot.functions.routing`)."""

IMPORT_ROOT = Path(__file__).resolve().parents[PACKAGE_PREFIX.count(".") + 1]
"""The `sys.path` entry this copy imports from: `ROOT` in the repository, the site-packages folder when installed."""


def command_name(package: str) -> str:
    """How a command line is started: `python -m ops` from the repository, `registry-autopilot-ops` installed."""
    return f"{PROJECT}-{package}" if PACKAGE_PREFIX else f"python -m {package}"


def module_name(name: str) -> str:
    """A module as the repository names it (`sandbox.worker`, `functions.handlers.register`) -> as this copy
    imports it. Names outside the project's packages (a test's own handler module) stay as they are."""
    return PACKAGE_PREFIX + name if name.partition(".")[0] in PACKAGES else name


FIFO_SUFFIX = ".fifo"
"""SQS names every FIFO queue so (and only FIFO queues)."""

SANDBOX_REGION = "us-east-1"
"""The region the sandbox, its workers and the command lines that talk to it use (moto's server takes any)."""
