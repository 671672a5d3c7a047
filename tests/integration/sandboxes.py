"""Starting a sandbox in a fixture: a sandbox that cannot start fails the test with its reason, not a traceback."""

from __future__ import annotations

import pytest

from sandbox import Sandbox, SandboxError


def started(sandbox: Sandbox, what: str = "the sandbox") -> Sandbox:
    try:
        return sandbox.start()
    except SandboxError as error:
        pytest.fail(f"{what} did not start: {error}", pytrace=False)
