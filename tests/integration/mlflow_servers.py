"""A real MLflow server of a test module's own, on 127.0.0.1, for what the session sandbox's server cannot be (with
authentication, with workspaces on): started with `mlflow server`, stopped when the block ends."""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from mlflow.server.auth.client import AuthServiceClient

from sandbox import temporary_environment
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


AUTH_ADMIN = "admin"


@contextmanager
def basic_auth_server(workdir: Path, what: str, users: Sequence[str]) -> Iterator[dict[str, str]]:
    """`mlflow server --app-name basic-auth` (default permission READ) with an admin and `users`, each password
    unique to the run; yields `{"url", "admin_password", <user>: <password>...}`."""
    config = workdir / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{workdir / 'auth.db'}\n"
        f"admin_username = {AUTH_ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    admin_password = f"admin-{secrets.token_hex(16)}"
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
    }
    with mlflow_server(workdir, what, args=("--app-name", "basic-auth"), env=env) as url:
        passwords = {user: f"{user}-{secrets.token_hex(16)}" for user in users}
        with temporary_environment(
            {"MLFLOW_TRACKING_USERNAME": AUTH_ADMIN, "MLFLOW_TRACKING_PASSWORD": admin_password}
        ):
            for user, password in passwords.items():
                AuthServiceClient(url).create_user(user, password)
        yield {"url": url, "admin_password": admin_password, **passwords}
