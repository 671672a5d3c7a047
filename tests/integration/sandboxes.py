"""Starting a sandbox in a fixture: a sandbox that cannot start fails the test with its reason, not a traceback.

And the few steps the sandbox tests share: uploading a model with a metric, reading alias holders, running `ops`,
waiting for a register worker's log line about a key.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from functions.domain.tags import origin_tag
from sandbox import Sandbox, SandboxError


def started(sandbox: Sandbox, what: str = "the sandbox") -> Sandbox:
    try:
        return sandbox.start()
    except SandboxError as error:
        pytest.fail(f"{what} did not start: {error}", pytrace=False)


def upload_with_accuracy(sandbox, model_dir: Path, work: Path, name: str, label: str, accuracy: float) -> str:  # type: ignore[no-untyped-def]
    """A copy of a real saved model with a metrics.json, uploaded under models/<name>/<label>/ (MLmodel last)."""
    copy = work / f"{name}-{label}"
    shutil.copytree(model_dir, copy)
    (copy / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    prefix = f"models/{name}/{label}/"
    sandbox.upload_dir(copy, prefix)
    return f"{prefix}MLmodel"


def alias_holder(client, name: str, alias: str) -> str | None:  # type: ignore[no-untyped-def]
    aliases = client.get_registered_model(name).aliases
    return str(aliases[alias]) if alias in aliases else None


def version_for_key(client, name: str, key: str) -> str:  # type: ignore[no-untyped-def]
    [version] = [v for v in client.search_model_versions(f"name='{name}'") if v.tags.get(origin_tag("key")) == key]
    return str(version.version)


def ops(sandbox, *args: str) -> int:  # type: ignore[no-untyped-def]
    """`python -m ops --sandbox <this sandbox> <args>`, in this process."""
    from ops.__main__ import main as ops_main

    return ops_main(["--sandbox", json.dumps(sandbox.info()), *args])


def wait_for_log_line(sandbox, *, message: str, key: str, timeout: float = 60.0) -> dict:  # type: ignore[no-untyped-def]
    """The register worker's first log line with that message about that key (polls its log until it is there)."""
    deadline = time.monotonic() + timeout
    while True:
        for line in sandbox.worker_log_lines(["register"]):
            if line.get("message") == message and line.get("key") == key:
                return line
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {message!r} log line for {key} after {timeout:.0f} s")
        time.sleep(0.2)
