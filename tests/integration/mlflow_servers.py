"""A real MLflow server of a test module's own, on 127.0.0.1, for what the session sandbox's server cannot be (with
authentication, with workspaces on): started with `mlflow server`, stopped when the block ends."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from sandbox.processes import LOCALHOST, ChildProcess, free_port, stop_all, wait_until_healthy

START_SECONDS = 90


@contextmanager
def mlflow_server(
    workdir: Path, what: str, *, args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """`mlflow server` on a free port with a SQLite store in `workdir` (no artifact serving) and `args`; yields its
    URL once `/health` answers. The environment is this process's without `MLFLOW_*`, `AWS_*` and `POWERTOOLS_*`
    (a server refuses to start with the client-only `MLFLOW_WORKSPACE` set, say), plus `env`."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_", "POWERTOOLS_"))}
    environment.update({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})})
    server = ChildProcess.start(
        what,
        [
            *(sys.executable, "-m", "mlflow", "server", *args),
            *("--host", LOCALHOST, "--port", str(port), "--workers", "1"),
            *("--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}", "--no-serve-artifacts"),
        ],
        env=environment,
        log_path=workdir / "mlflow.log",
        cwd=workdir,
    )
    url = f"http://{LOCALHOST}:{port}"
    try:
        wait_until_healthy(f"{url}/health", child=server, deadline=time.monotonic() + START_SECONDS, what=what)
        yield url
    finally:
        stop_all([server], timeout=8.0)
