"""The whole pipeline on one machine: moto's server, a real MLflow server and one worker per route.

`Sandbox` builds, from `functions.routing` only, what the CDK stack builds on AWS: the artifact bucket
(versioned, sending its events to EventBridge), the project bus, the idempotency table, and per route a
queue with its dead-letter queue and a rule that feeds it. It then runs each route's handler in a worker
process (`sandbox.worker`) with the environment `functions.settings.function_environment` gives it on
AWS, pointed at the local endpoints. An extra "observer" queue receives every event the project emits,
so tools and tests can see them.

A FIFO route (`route.fifo_group`) gets FIFO queues as on AWS: `<name>.fifo` and `<name>-dlq.fifo`, both with
content-based deduplication (moto, like EventBridge, drops events sent to a FIFO queue without it), and a rule
target that puts every event into the route's message group. moto keeps a group locked while any of its messages
is in flight, as SQS does, so the route's worker gets the group one batch at a time, in order. (On AWS the rule
target also has a standard dead-letter queue for undeliverable events; moto delivers or drops, so there is none.)
moto checks that lock when a ReceiveMessage starts, though: a second consumer long-polling the same FIFO queue
can be handed a later message of a group whose earlier one is still in flight. So a FIFO queue gets one worker
(`start_worker` refuses a second), which is all Lambda's ordering needs to be reproduced.

A route worker that dies (killed, out of memory) or overruns the route's function timeout (then the sandbox kills
it, as Lambda ends the invocation) is replaced by a new process, as Lambda gives the next invocation a new execution
environment; the message it held comes back when its visibility timeout ends. Each replacement is one line in the
progress output and in `logs/sandbox.log` (route, pid, how it ended, the new pid), and is kept in
`Sandbox.worker_replacements`. A route whose workers die `CRASH_LOOP_DEATHS` times within
`CRASH_LOOP_WINDOW_SECONDS` before handling a batch (a handler that cannot start: bad configuration) is a crash
loop: it is not replaced again, and `check_running`/`wait_until_quiet` raise `SandboxError` with the reason.

    with Sandbox() as sandbox:
        sandbox.upload_dir("my-model", key_prefix="models/churn/1/")
        sandbox.wait_until_quiet(timeout=60)
        print(sandbox.observed_events())

Nothing listens beyond 127.0.0.1, and no AWS account or Docker is needed.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from functions.routing import (
    DEFAULT_ARTIFACT_ROOT_PREFIX,
    MLMODEL_FILE,
    ROUTES,
    WEBHOOK,
    Bus,
    Route,
    project_archive_pattern,
)
from functions.settings import function_environment, webhook_function_environment
from sandbox.processes import (
    LOCALHOST,
    ChildProcess,
    CrashLoopGuard,
    SandboxError,
    check_port_free,
    free_port,
    stop_all,
    tail,
    wait_until_healthy,
)
from sandbox.worker import EVENT_SOURCE_ENDPOINT_VARIABLE, route_to_json

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # nosec B105: dummy, for the local emulator
NAME_PREFIX = "registry-autopilot"
DEFAULT_BUCKET = f"{NAME_PREFIX}-artifacts"
PROJECT_BUS = NAME_PREFIX
IDEMPOTENCY_TABLE = f"{NAME_PREFIX}-idempotency"
OBSERVER_QUEUE = f"{NAME_PREFIX}-observer"
FIFO_SUFFIX = ".fifo"
WEBHOOK_SECRET = f"{NAME_PREFIX}-webhook"
# MLflow refuses webhooks to http:// and private addresses unless told otherwise: the sandbox's endpoint is both.
# A 1 s cache lets a webhook created (or deleted) in a test take effect at once.
MLFLOW_WEBHOOK_SETTINGS = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_CACHE_TTL": "1",
}
REPO_ROOT = Path(__file__).resolve().parents[1]

_REQUIRED_MODULES = {
    "moto.server": "moto[server]",
    "flask": "moto[server]",
    "mlflow.server": "mlflow (the full package, not mlflow-skinny)",
    "sqlalchemy": "mlflow (the full package, not mlflow-skinny)",
    "alembic": "mlflow (the full package, not mlflow-skinny)",
    "aws_lambda_powertools": "aws-lambda-powertools[parser]",
}
_INHERITED_PREFIXES_DROPPED = ("AWS_", "MLFLOW_", "POWERTOOLS_")
CRASH_LOOP_DEATHS = 3
CRASH_LOOP_WINDOW_SECONDS = 120.0
"""A route's workers dying 3 times within 2 minutes before handling a batch is a crash loop (each start imports the
handler: a few seconds; a dying worker is replaced at once, so 3 deaths fit the window even on a loaded machine)."""
SUPERVISE_INTERVAL_SECONDS = 0.2
TIMEOUT_GRACE_SECONDS = 2.0
"""How far past the route's function timeout a busy worker may go before the sandbox kills it (the worker's own
receive and delete calls are not part of Lambda's invocation)."""
_QUIET_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class RouteWiring:
    """What the sandbox created for one route."""

    route: Route
    bus_name: str
    rule_name: str
    queue_url: str
    dead_letter_queue_url: str

    @property
    def fifo(self) -> bool:
        return self.queue_url.endswith(FIFO_SUFFIX)


@dataclass(frozen=True)
class WorkerReplacement:
    """A route worker that ended, and the process that took its place."""

    worker: str
    """The worker's name: its route's (`register`), or `register-2` for a replica."""
    route: str
    pid: int
    ended: str
    """`killed by SIGKILL`, `exited with code 1`, `timed out after 62.1 s (function timeout 60 s)`."""
    replacement_pid: int
    took_a_batch: bool
    at: float
    """`time.time()` of the replacement."""


@dataclass(frozen=True)
class DeadLetter:
    """A message in a route's dead-letter queue."""

    route: str
    message_id: str
    body: str
    event: dict | None
    reason: str | None
    """The `reason` message attribute (set when a handler dead-letters a record itself)."""
    error: str | None
    receive_count: int
    attributes: dict[str, str]
    message_group_id: str | None = None
    """Set for a letter in a FIFO dead-letter queue."""

    @property
    def key(self) -> str | None:
        """The S3 object key of the dead-lettered event (to tell a test's letters from others')."""
        detail = (self.event or {}).get("detail")
        obj = detail.get("object") if isinstance(detail, dict) else None
        return obj.get("key") if isinstance(obj, dict) else None


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


class Sandbox:
    """moto + MLflow + one worker per route, wired from `functions.routing`.

    Args:
        workdir: where the MLflow database, logs and worker status files go; a fresh temporary
            directory (removed by `stop()`) when omitted. A given directory is kept, and leftovers of an
            earlier sandbox in it are cleared.
        mlflow_port, aws_port: ports on 127.0.0.1; free ones are picked when omitted.
        artifact_root_prefix: MLflow's default artifact root is `s3://<bucket>/<prefix>`.
        routes: the routes to wire (all of `functions.routing.ROUTES` by default).
        handlers: route name → `package.module.function` to run instead of the route's handler.
        function_settings: extra keyword arguments for `function_environment` (say, `max_pending_seconds`).
        visibility_timeout_seconds: overrides every route queue's visibility timeout (tests of retries).
        worker_counts: route name → how many worker processes drain its queue (default 1 each), mirroring the
            event source mapping's maximum concurrency; a FIFO route keeps one (a second is refused).
        functions_tracking_uri: the MLflow URI the workers call instead of the sandbox's server (a proxy
            in front of it, say); reads by the sandbox itself still go to the server.
        functions_aws_endpoint_url: likewise, the AWS endpoint the route functions call instead of moto's (a
            fault-injecting proxy, `reliability.faults`); the workers' own SQS polling (Lambda's event source
            mapping on AWS) and the sandbox's provisioning and reads still talk to moto directly.
        handle_signals: while the sandbox runs, SIGTERM and SIGHUP act like Ctrl+C (KeyboardInterrupt), so
            `with Sandbox()` and pytest stop it cleanly (main thread only; the old handlers come back on stop).
        progress: called with one-line progress messages (the CLI prints them on stderr).
    """

    def __init__(
        self,
        *,
        workdir: str | Path | None = None,
        mlflow_port: int | None = None,
        aws_port: int | None = None,
        artifact_root_prefix: str = DEFAULT_ARTIFACT_ROOT_PREFIX,
        bucket: str = DEFAULT_BUCKET,
        routes: Sequence[Route] = ROUTES,
        handlers: Mapping[str, str] | None = None,
        function_settings: Mapping[str, Any] | None = None,
        visibility_timeout_seconds: int | None = None,
        worker_counts: Mapping[str, int] | None = None,
        functions_tracking_uri: str | None = None,
        functions_aws_endpoint_url: str | None = None,
        log_level: str = "INFO",
        startup_timeout: float = 90.0,
        handle_signals: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self._requested_workdir = Path(workdir).resolve() if workdir else None
        self._requested_ports = {"mlflow": mlflow_port, "aws": aws_port}
        self.artifact_root_prefix = artifact_root_prefix.strip("/") or DEFAULT_ARTIFACT_ROOT_PREFIX
        self.bucket = bucket
        self.routes = tuple(routes)
        self._handlers = dict(handlers or {})
        unknown = sorted(set(self._handlers) - {r.name for r in self.routes})
        if unknown:
            raise SandboxError(f"handlers given for unknown routes: {', '.join(unknown)}")
        self._function_settings = dict(function_settings or {})
        self._visibility_timeout = visibility_timeout_seconds
        self.worker_counts = {r.name: int((worker_counts or {}).get(r.name, 1)) for r in self.routes}
        unknown = sorted(set(worker_counts or {}) - {r.name for r in self.routes})
        bad = [f"{r.name}={self.worker_counts[r.name]}" for r in self.routes if self.worker_counts[r.name] < 1]
        bad += [f"{r.name} (FIFO: one worker)" for r in self.routes if r.fifo and self.worker_counts[r.name] > 1]
        if unknown or bad:
            raise SandboxError(f"worker counts refused: {', '.join(unknown + bad)}")
        self._functions_tracking_uri = functions_tracking_uri
        self._functions_aws_endpoint_url = functions_aws_endpoint_url
        self._log_level = log_level
        self._startup_timeout = startup_timeout
        self._handle_signals = handle_signals
        self._progress = progress or (lambda message: None)

        self.event_bus = PROJECT_BUS
        self.idempotency_table = IDEMPOTENCY_TABLE
        self.workdir: Path | None = None
        self.mlflow_port: int | None = None
        self.aws_port: int | None = None
        self.webhook_port: int | None = None
        self.wiring: dict[str, RouteWiring] = {}
        self.observer_queue_url: str | None = None
        self.startup_seconds: float | None = None
        self._owned = True
        self._remove_workdir = False
        self._servers: dict[str, ChildProcess] = {}
        self._workers: dict[str, ChildProcess] = {}
        self._extra_workers: list[ChildProcess] = []
        self._replicas: dict[str, ChildProcess] = {}
        self._fifo_consumers: dict[str, ChildProcess] = {}
        self._worker_pids: dict[str, int] = {}
        self._worker_specs: dict[str, dict[str, Any]] = {}
        self._workers_lock = threading.RLock()
        self._supervisor: threading.Thread | None = None
        self._supervisor_stop = threading.Event()
        self._crash_loops = CrashLoopGuard(CRASH_LOOP_DEATHS, CRASH_LOOP_WINDOW_SECONDS)
        self._fatal: SandboxError | None = None
        self.worker_replacements: list[WorkerReplacement] = []
        self._clients: dict[str, Any] = {}
        self._observed: list[dict] = []
        self._observer_lock = threading.Lock()
        self._previous_handlers: dict[int, Any] = {}
        self._started = False
        self._stopping = False

    # --- endpoints -------------------------------------------------------------------------------------

    @property
    def aws_endpoint_url(self) -> str:
        return f"http://{LOCALHOST}:{self.aws_port}"

    @property
    def mlflow_tracking_uri(self) -> str:
        return f"http://{LOCALHOST}:{self.mlflow_port}"

    @property
    def webhook_url(self) -> str:
        """The webhook function's URL (a function URL on AWS): give it to `MlflowClient().create_webhook`."""
        return f"http://{LOCALHOST}:{self.webhook_port}/"

    @property
    def artifact_root(self) -> str:
        return f"s3://{self.bucket}/{self.artifact_root_prefix}"

    @property
    def queue_urls(self) -> dict[str, str]:
        return {name: wiring.queue_url for name, wiring in self.wiring.items()}

    @property
    def dead_letter_queue_urls(self) -> dict[str, str]:
        return {name: wiring.dead_letter_queue_url for name, wiring in self.wiring.items()}

    @property
    def logs_dir(self) -> Path:
        return self._workdir() / "logs"

    def log_path(self, name: str) -> Path:
        """The log of a route's worker (`register`) or of a server (`moto`, `mlflow`)."""
        return self.logs_dir / f"{name}.log"

    def status_path(self, route_name: str) -> Path:
        return self._workdir() / "status" / f"{route_name}.json"

    def client_environment(self) -> dict[str, str]:
        """The variables that point MLflow and boto3 clients at this sandbox."""
        return {
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            "MLFLOW_S3_ENDPOINT_URL": self.aws_endpoint_url,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            **DUMMY_CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
        }

    def info(self) -> dict[str, Any]:
        """Everything a client needs to use (or `attach` to) this sandbox, as JSON-ready data."""
        return {
            "mlflow_tracking_uri": self.mlflow_tracking_uri,
            "aws_endpoint_url": self.aws_endpoint_url,
            "region": REGION,
            "bucket": self.bucket,
            "artifact_root": self.artifact_root,
            "artifact_root_prefix": self.artifact_root_prefix,
            "event_bus": self.event_bus,
            "idempotency_table": self.idempotency_table,
            "queues": {
                name: {"queue_url": wiring.queue_url, "dead_letter_queue_url": wiring.dead_letter_queue_url}
                for name, wiring in sorted(self.wiring.items())
            },
            "observer_queue_url": self.observer_queue_url,
            "webhook_url": self.webhook_url,
            "webhook_secret_id": WEBHOOK_SECRET,
            "workdir": str(self.workdir),
            "pids": {
                **{name: child.pid for name, child in self._servers.items()},
                "workers": dict(sorted(self._worker_pids.items())),
            },
        }

    @classmethod
    def attach(cls, info: Mapping[str, Any] | str) -> Sandbox:
        """A handle on a sandbox another process runs (its `--json` line); `stop()` leaves it running."""
        data = json.loads(info) if isinstance(info, str) else dict(info)
        try:
            sandbox = cls(artifact_root_prefix=data["artifact_root_prefix"], bucket=data["bucket"])
            sandbox.event_bus = data["event_bus"]
            sandbox.idempotency_table = data["idempotency_table"]
            sandbox.aws_port = int(data["aws_endpoint_url"].rsplit(":", 1)[1])
            sandbox.mlflow_port = int(data["mlflow_tracking_uri"].rsplit(":", 1)[1])
            sandbox.workdir = Path(data["workdir"])
            sandbox.observer_queue_url = data["observer_queue_url"]
            if data.get("webhook_url"):
                sandbox.webhook_port = int(data["webhook_url"].rstrip("/").rsplit(":", 1)[1])
            known = {r.name: r for r in ROUTES}
            sandbox.routes = tuple(known[name] for name in data["queues"] if name in known)
            for route in sandbox.routes:
                urls = data["queues"][route.name]
                sandbox.wiring[route.name] = RouteWiring(
                    route=route,
                    bus_name="default" if route.bus is Bus.DEFAULT else sandbox.event_bus,
                    rule_name=f"{NAME_PREFIX}-{route.name}",
                    queue_url=urls["queue_url"],
                    dead_letter_queue_url=urls["dead_letter_queue_url"],
                )
            sandbox._worker_pids = {name: int(pid) for name, pid in data.get("pids", {}).get("workers", {}).items()}
        except (KeyError, ValueError, IndexError, TypeError) as error:
            raise SandboxError(
                f"not a sandbox description (the JSON line of `replay sandbox --json`): {error}"
            ) from None
        sandbox._owned = False
        sandbox._started = True
        return sandbox

    # --- life cycle ------------------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Sandbox:
        if self._started:
            return self
        started = time.monotonic()
        deadline = started + self._startup_timeout
        check_dependencies()
        self._started = True
        atexit.register(self.stop)
        try:
            self._install_signal_handlers()
            self._choose_ports()
            self._prepare_workdir()
            self._progress(f"starting moto on {self.aws_endpoint_url} and MLflow on {self.mlflow_tracking_uri}")
            self._start_servers()
            wait_until_healthy(
                f"{self.aws_endpoint_url}/moto-api/", child=self._servers["moto"], deadline=deadline, what="moto server"
            )
            self._progress("creating the bucket, the project bus, the idempotency table, queues and rules")
            self._create_resources()
            self._start_workers()
            self._start_webhook_endpoint()
            wait_until_healthy(
                f"{self.mlflow_tracking_uri}/health",
                child=self._servers["mlflow"],
                deadline=deadline,
                what="MLflow server",
            )
            self._wait_for_workers(deadline)
            self._start_supervisor()
            wait_until_healthy(
                f"{self.webhook_url}_sandbox/health",
                child=self._servers["webhook"],
                deadline=deadline,
                what="webhook endpoint",
            )
        except BaseException as error:
            if not isinstance(error, KeyboardInterrupt):
                self._remove_workdir = False  # keep the logs the error message points to
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        self._progress(f"sandbox ready in {self.startup_seconds:.1f} s (workdir {self.workdir})")
        return self

    def stop(self) -> None:
        """Stop the workers, then MLflow and moto (each with its process group); idempotent."""
        if self._stopping or not self._owned:
            return
        self._stopping = True
        try:
            self._supervisor_stop.set()
            if self._supervisor is not None and self._supervisor is not threading.current_thread():
                self._supervisor.join(timeout=10.0)
            workers = [*self._workers.values(), *self._replicas.values(), *self._extra_workers]
            if workers:
                stop_all(workers, timeout=5.0)
            if self._servers:
                for server in self._servers.values():
                    server.signal(signal.SIGCONT)  # a paused server would not see SIGTERM
                stop_all(list(self._servers.values()), timeout=8.0)
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            if self._remove_workdir and self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
        finally:
            self._restore_signal_handlers()
            atexit.unregister(self.stop)

    def _install_signal_handlers(self) -> None:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum: int, _frame: Any) -> None:
            if not self._stopping:
                raise KeyboardInterrupt(f"signal {signum}")

        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._previous_handlers[signum] = signal.signal(signum, on_signal)

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous_handlers.items():
            signal.signal(signum, previous)
        self._previous_handlers.clear()

    def _workdir(self) -> Path:
        if self.workdir is None:
            raise SandboxError("the sandbox has not been started")
        return self.workdir

    def _prepare_workdir(self) -> None:
        if self._requested_workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"{NAME_PREFIX}-sandbox-"))
            self._remove_workdir = True
        else:
            self.workdir = self._requested_workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
            # An earlier sandbox's registry points at objects that died with its moto: start afresh.
            for leftover in ("mlflow.db", "logs", "status"):
                path = self.workdir / leftover
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "status").mkdir(parents=True, exist_ok=True)

    def _choose_ports(self) -> None:
        if self._requested_ports["aws"] is not None and self._requested_ports["aws"] == self._requested_ports["mlflow"]:
            raise SandboxError("--aws-port and --mlflow-port must differ: moto and MLflow each need their own port")
        for name, option, what in (("aws", "--aws-port", "moto server"), ("mlflow", "--mlflow-port", "MLflow server")):
            port = self._requested_ports[name]
            if port is not None:
                check_port_free(port, what=what, option=option)
        self.aws_port = self._requested_ports["aws"] or free_port()
        self.mlflow_port = self._requested_ports["mlflow"] or free_port()
        while self.mlflow_port == self.aws_port:
            self.mlflow_port = free_port()
        self.webhook_port = free_port()
        while self.webhook_port in (self.aws_port, self.mlflow_port):
            self.webhook_port = free_port()

    def _base_environment(self) -> dict[str, str]:
        """This process's environment without AWS, MLflow or Powertools settings that could leak in."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES_DROPPED)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["DO_NOT_TRACK"] = "true"
        return env

    def _start_servers(self) -> None:
        env = {**self._base_environment(), **self.client_environment()}
        env.pop("MLFLOW_TRACKING_URI")
        self._servers["moto"] = ChildProcess.start(
            "moto server",
            [sys.executable, "-m", "sandbox.moto_server", "-H", LOCALHOST, "-p", str(self.aws_port)],
            env=env,
            log_path=self.log_path("moto"),
            cwd=REPO_ROOT,
        )
        self._start_mlflow_process()

    def _start_mlflow_process(self) -> None:
        env = {**self._base_environment(), **self.client_environment()}
        env.pop("MLFLOW_TRACKING_URI")
        self._servers["mlflow"] = ChildProcess.start(
            "MLflow server",
            [
                *(sys.executable, "-m", "mlflow", "server"),
                *("--host", LOCALHOST, "--port", str(self.mlflow_port), "--workers", "1"),
                *("--backend-store-uri", f"sqlite:///{self._workdir() / 'mlflow.db'}"),
                *("--default-artifact-root", self.artifact_root, "--no-serve-artifacts"),
            ],
            env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **MLFLOW_WEBHOOK_SETTINGS},
            log_path=self.log_path("mlflow"),
            cwd=self.workdir,
        )

    def pause_mlflow(self) -> None:
        """Freeze the MLflow server (SIGSTOP to its process group): a hung server, not a down one. Connections are
        still accepted (the kernel queues them) and never answered until `resume_mlflow`, which then serves them."""
        self._servers["mlflow"].signal(signal.SIGSTOP)

    def resume_mlflow(self) -> None:
        self._servers["mlflow"].signal(signal.SIGCONT)

    def stop_mlflow(self) -> None:
        """Stop the MLflow server (an outage); the registry's database stays for `start_mlflow`."""
        self._servers["mlflow"].stop(timeout=8.0)

    def start_mlflow(self, timeout: float = 60.0) -> None:
        """Start the MLflow server again on the same port and database, and wait until it is healthy."""
        if self._servers["mlflow"].alive():
            return
        self._start_mlflow_process()
        wait_until_healthy(
            f"{self.mlflow_tracking_uri}/health",
            child=self._servers["mlflow"],
            deadline=time.monotonic() + timeout,
            what="MLflow server",
        )

    def pause_aws(self) -> None:
        """Freeze the moto server's process group (SIGSTOP): an AWS outage, not a restart.

        Its listening socket stays open, so connections wait in the backlog and nothing is answered (clients see
        their read timeout), and its state, which lives only in memory, survives for `resume_aws`. Avoid the
        sandbox's own reads (`wait_until_quiet`, `registry_state` ...) until then: they would wait as well.
        """
        self._servers["moto"].signal(signal.SIGSTOP)

    def resume_aws(self) -> None:
        """Let the moto server run again (SIGCONT); what waited in its backlog is answered."""
        self._servers["moto"].signal(signal.SIGCONT)

    def _create_resources(self) -> None:
        s3, events, sqs, dynamodb = (self.client(name) for name in ("s3", "events", "sqs", "dynamodb"))
        s3.create_bucket(Bucket=self.bucket)
        s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        self._set_bucket_notifications(enabled=True)
        events.create_event_bus(Name=self.event_bus)
        dynamodb.create_table(
            TableName=self.idempotency_table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=self.idempotency_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
        )
        for route in self.routes:
            self.wiring[route.name] = self._wire_route(route, events=events, sqs=sqs)
        self.observer_queue_url = sqs.create_queue(QueueName=OBSERVER_QUEUE)["QueueUrl"]
        self.client("secretsmanager").create_secret(Name=WEBHOOK_SECRET, SecretString=secrets.token_urlsafe(48))
        self._put_rule(
            events,
            name=OBSERVER_QUEUE,
            bus_name=self.event_bus,
            pattern=project_archive_pattern(),
            queue_url=self.observer_queue_url,
        )

    def _wire_route(self, route: Route, *, events: Any, sqs: Any) -> RouteWiring:
        name = f"{NAME_PREFIX}-{route.name}"
        suffix, fifo = (
            (FIFO_SUFFIX, {"FifoQueue": "true", "ContentBasedDeduplication": "true"}) if route.fifo else ("", {})
        )
        dead_letter_queue_url = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=fifo)["QueueUrl"]
        visibility = (
            self._visibility_timeout if self._visibility_timeout is not None else route.visibility_timeout_seconds
        )
        redrive = {
            "deadLetterTargetArn": self._queue_arn(dead_letter_queue_url),
            "maxReceiveCount": route.max_receive_count,
        }
        queue_url = sqs.create_queue(
            QueueName=f"{name}{suffix}",
            Attributes={**fifo, "VisibilityTimeout": str(visibility), "RedrivePolicy": json.dumps(redrive)},
        )["QueueUrl"]
        bus_name = "default" if route.bus is Bus.DEFAULT else self.event_bus
        self._put_rule(
            events,
            name=name,
            bus_name=bus_name,
            pattern=route.event_pattern(bucket_name=self.bucket),
            queue_url=queue_url,
            message_group_id=route.fifo_group,
        )
        return RouteWiring(route, bus_name, name, queue_url, dead_letter_queue_url)

    def _put_rule(
        self,
        events: Any,
        *,
        name: str,
        bus_name: str,
        pattern: dict,
        queue_url: str,
        message_group_id: str | None = None,
    ) -> None:
        events.put_rule(Name=name, EventBusName=bus_name, EventPattern=json.dumps(pattern), State="ENABLED")
        target: dict[str, Any] = {"Id": "queue", "Arn": self._queue_arn(queue_url)}
        if message_group_id:
            target["SqsParameters"] = {"MessageGroupId": message_group_id}
        events.put_targets(Rule=name, EventBusName=bus_name, Targets=[target])

    def _queue_arn(self, queue_url: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return attributes["Attributes"]["QueueArn"]

    def _set_bucket_notifications(self, *, enabled: bool) -> None:
        configuration = {"EventBridgeConfiguration": {}} if enabled else {}
        self.client("s3").put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration=configuration
        )

    def worker_environment(self, route: Route, *, queue_url: str, dead_letter_queue_url: str) -> dict[str, str]:
        """A route function's environment on AWS (`function_environment`), pointed at this sandbox."""
        function_name = f"{NAME_PREFIX}-{route.name}"
        return {
            **self._base_environment(),
            **function_environment(
                route,
                bucket=self.bucket,
                artifact_root_prefix=self.artifact_root_prefix,
                event_bus_name=self.event_bus,
                idempotency_table=self.idempotency_table,
                queue_url=queue_url,
                dead_letter_queue_url=dead_letter_queue_url,
                tracking_uri=self._functions_tracking_uri or self.mlflow_tracking_uri,
                log_level=self._log_level,
                **self._function_settings,
            ),
            # What the Lambda runtime and the local endpoints add.
            "AWS_ENDPOINT_URL": self._functions_aws_endpoint_url or self.aws_endpoint_url,
            "MLFLOW_S3_ENDPOINT_URL": self._functions_aws_endpoint_url or self.aws_endpoint_url,
            EVENT_SOURCE_ENDPOINT_VARIABLE: self.aws_endpoint_url,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            **DUMMY_CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(route.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "_HANDLER": route.handler,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }

    def _start_webhook_endpoint(self) -> None:
        """The webhook function behind a local function URL, with its AWS environment pointed at this sandbox."""
        secret_arn = self.client("secretsmanager").describe_secret(SecretId=WEBHOOK_SECRET)["ARN"]
        env = {
            **self._base_environment(),
            **webhook_function_environment(
                bucket=self.bucket,
                event_bus_name=self.event_bus,
                idempotency_table=self.idempotency_table,
                secret_arn=secret_arn,
                log_level=self._log_level,
            ),
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            **DUMMY_CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": f"{NAME_PREFIX}-{WEBHOOK.name}",
            "_HANDLER": WEBHOOK.handler,
        }
        self._servers["webhook"] = ChildProcess.start(
            "webhook endpoint",
            [
                *(sys.executable, "-m", "sandbox.function_url", "--handler", WEBHOOK.handler),
                *("--host", LOCALHOST, "--port", str(self.webhook_port), "--parent-pid", str(os.getpid())),
                *("--function-name", f"{NAME_PREFIX}-{WEBHOOK.name}", "--memory-mb", str(WEBHOOK.memory_mb)),
                *("--timeout-seconds", str(WEBHOOK.timeout_seconds)),
            ],
            env=env,
            log_path=self.log_path(WEBHOOK.name),
            cwd=REPO_ROOT,
        )

    def webhook_secret(self) -> str:
        """The HMAC secret the webhook function verifies with (in the sandbox's Secrets Manager)."""
        return self.client("secretsmanager").get_secret_value(SecretId=WEBHOOK_SECRET)["SecretString"]

    def start_worker(
        self,
        route: Route,
        *,
        queue_url: str,
        dead_letter_queue_url: str | None = None,
        handler: str | None = None,
        name: str | None = None,
    ) -> ChildProcess:
        """Run a worker process for `route`'s settings on any queue (with another handler, for tests).

        The process is stopped with the sandbox (or earlier with `.stop()`); its log is
        `log_path(name)` and its status file `status_path(name)`.
        """
        worker_name = name or route.name
        consumer = self._fifo_consumers.get(queue_url)
        if consumer is not None and consumer.alive():
            raise SandboxError(
                f"{queue_url} already has a worker ({consumer.name}): a FIFO queue gets one, because moto may hand "
                "a second consumer a later message of a group that is still in flight"
            )
        child = ChildProcess.start(
            f"worker {worker_name}",
            [
                *(sys.executable, "-m", "sandbox.worker", "--route", route.name, "--queue-url", queue_url),
                *("--route-json", route_to_json(route)),
                *("--region", REGION, "--function-name", f"{NAME_PREFIX}-{worker_name}"),
                *("--status-file", str(self.status_path(worker_name)), "--parent-pid", str(os.getpid())),
                *(("--handler", handler) if handler else ()),
            ],
            env=self.worker_environment(
                route, queue_url=queue_url, dead_letter_queue_url=dead_letter_queue_url or queue_url
            ),
            log_path=self.log_path(worker_name),
            cwd=REPO_ROOT,
        )
        if name is None:
            self._workers[route.name] = child
            self._worker_pids[route.name] = child.pid
        else:
            self._extra_workers.append(child)
        if queue_url.endswith(FIFO_SUFFIX):
            self._fifo_consumers[queue_url] = child
        return child

    def _start_workers(self) -> None:
        for route in self.routes:
            wiring = self.wiring[route.name]
            spec = {
                "route": route,
                "queue_url": wiring.queue_url,
                "dead_letter_queue_url": wiring.dead_letter_queue_url,
                "handler": self._handlers.get(route.name),
            }
            self._worker_specs[route.name] = spec
            for index in range(2, self.worker_counts[route.name] + 1):
                self._worker_specs[f"{route.name}-{index}"] = {**spec, "name": f"{route.name}-{index}"}
        for name in self._worker_specs:
            self._launch_route_worker(name)

    def _launch_route_worker(self, name: str) -> ChildProcess:
        """Start (or restart) route worker `name` from its spec; a replica is kept apart from the route's first."""
        child = self.start_worker(**self._worker_specs[name])
        if "name" in self._worker_specs[name]:
            self._replicas[name] = child
        return child

    # --- supervision: a dead worker is replaced, as Lambda starts a new execution environment --------------

    def _route_workers(self) -> dict[str, ChildProcess]:
        with self._workers_lock:
            return {**self._workers, **self._replicas}

    def _start_supervisor(self) -> None:
        self._supervisor = threading.Thread(target=self._supervise, name="sandbox-supervisor", daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._supervisor_stop.wait(SUPERVISE_INTERVAL_SECONDS) and self._fatal is None:
            try:
                self.supervise_once()
            except Exception as error:  # noqa: BLE001 - e.g. a status file half-written: look again next round
                self._supervision_log("WARNING", "supervision round failed", error=f"{type(error).__name__}: {error}")

    def supervise_once(self) -> None:
        """Replace every route worker that has died, after killing those past their function timeout."""
        for name, child in self._route_workers().items():
            if self._supervisor_stop.is_set() or self._fatal is not None:
                return
            ended = self._overran_timeout(name, child) if child.alive() else child.exit_description()
            if ended is not None:
                self._replace(name, child, ended=ended)

    def _overran_timeout(self, name: str, child: ChildProcess) -> str | None:
        """Kill a worker busy for longer than its route's function timeout (Lambda ends such an invocation)."""
        status = self.worker_status(name)
        if not status or status.get("pid") != child.pid or status.get("state") != "busy":
            return None
        timeout = self._worker_specs[name]["route"].timeout_seconds
        busy_for = time.time() - float(status.get("updated") or time.time())
        if busy_for <= timeout + TIMEOUT_GRACE_SECONDS:
            return None
        child.signal(signal.SIGKILL)
        child.wait(5.0)
        return f"timed out after {busy_for:.1f} s (function timeout {timeout} s), killed"

    def _replace(self, name: str, child: ChildProcess, *, ended: str) -> None:
        status = self.worker_status(name) or {}
        mine = status.get("pid") == child.pid
        took_a_batch = mine and int(status.get("batches") or 0) > 0
        route = self._worker_specs[name]["route"].name
        if self._crash_loops.record(route, at_start=not took_a_batch and "timed out" not in ended):
            reason = f": {status['error']}" if mine and status.get("error") else ""
            self._fatal = SandboxError(
                f"the workers of route {route!r} are in a crash loop: {CRASH_LOOP_DEATHS} died within "
                f"{CRASH_LOOP_WINDOW_SECONDS:.0f} s before handling a batch (the last, pid {child.pid}, {ended}"
                f"{reason}). A function that cannot start is misconfigured: fix it and start again. "
                f"Log: {child.log_path}"
            )
            self._supervision_log(
                "ERROR", "crash loop: worker not replaced", worker=name, route=route, pid=child.pid, ended=ended
            )
            self._progress(f"error: {self._fatal}")
            return
        with self._workers_lock:
            if self._stopping:
                return
            replacement = self._launch_route_worker(name)
        self.worker_replacements.append(
            WorkerReplacement(name, route, child.pid, ended, replacement.pid, took_a_batch, time.time())
        )
        self._supervision_log(
            "WARNING",
            "worker replaced",
            worker=name,
            route=route,
            pid=child.pid,
            ended=ended,
            replacement_pid=replacement.pid,
            took_a_batch=took_a_batch,
        )
        self._progress(
            f"worker of route {route!r} ({name}, pid {child.pid}) {ended}; replaced by pid {replacement.pid}"
        )

    def _supervision_log(self, level: str, message: str, **fields: Any) -> None:
        line = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "level": level, "logger": "sandbox.core"}
        with open(self.log_path("sandbox"), "a") as log:
            log.write(json.dumps({**line, "message": message, **fields}, default=str) + "\n")

    def wait_for_worker(self, name: str, child: ChildProcess, *, deadline: float) -> None:
        """Until the worker has imported its handler and polls; `SandboxError` if it cannot."""
        while True:
            status = self.worker_status(name)
            if status and status.get("state") == "failed":
                child.wait(2.0)
                raise SandboxError(
                    f"the worker of route {name!r} cannot run its handler: {status.get('error')}. "
                    f"Fix the handler (or its imports) and start again. Log: {child.log_path}"
                )
            if not child.alive():
                raise SandboxError(f"the worker of route {name!r} did not start: {child.exited_message()}")
            if status and status.get("state") in ("idle", "busy"):
                return
            if time.monotonic() > deadline:
                raise SandboxError(f"the worker of route {name!r} did not get ready in time. Log: {child.log_path}")
            time.sleep(0.05)

    def _wait_for_workers(self, deadline: float) -> None:
        for name, child in {**self._workers, **self._replicas}.items():
            self.wait_for_worker(name, child, deadline=deadline)

    def worker_status(self, name: str) -> dict | None:
        try:
            return json.loads(self.status_path(name).read_text())
        except (FileNotFoundError, ValueError):
            return None

    # --- AWS clients and the bucket --------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client for `service` on this sandbox's moto server (cached per service)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.aws_endpoint_url,
                region_name=REGION,
                aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30),
            )
        return self._clients[service]

    def put_object(self, key: str, body: bytes | str, **extra: Any) -> dict:
        """Write one object into the artifact bucket; returns S3's answer (ETag, VersionId)."""
        data = body.encode() if isinstance(body, str) else body
        return self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    def upload_dir(self, local_dir: str | Path, key_prefix: str = "", *, notify: bool = True) -> list[str]:
        """Upload every file under `local_dir` to `<key_prefix><relative path>`; returns the keys.

        `MLmodel` files go last, as a careful uploader would send them, so a model is complete when its
        event fires. With `notify=False` the bucket's EventBridge notifications are paused meanwhile
        (seeding objects that recorded events will refer to, without triggering the pipeline).
        """
        root = Path(local_dir)
        if not root.is_dir():
            raise SandboxError(f"{root} is not a directory")
        files = sorted(
            (p for p in root.rglob("*") if p.is_file()), key=lambda p: (p.name == MLMODEL_FILE, p.as_posix())
        )
        keys = []
        if not notify:
            self._set_bucket_notifications(enabled=False)
        try:
            for path in files:
                key = f"{key_prefix}{path.relative_to(root).as_posix()}"
                self.client("s3").upload_file(str(path), self.bucket, key)
                keys.append(key)
        finally:
            if not notify:
                self._set_bucket_notifications(enabled=True)
        return keys

    # --- what the pipeline did -------------------------------------------------------------------------

    def drain_observer(self) -> list[dict]:
        """Take every event waiting on the observer queue; returns the new ones (oldest first)."""
        sqs = self.client("sqs")
        drained: list[dict] = []
        with self._observer_lock:
            while True:
                messages = sqs.receive_message(
                    QueueUrl=self.observer_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                ).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    try:
                        drained.append(json.loads(message["Body"]))
                    except ValueError:
                        drained.append({"unparsed_body": message["Body"]})
                sqs.delete_message_batch(
                    QueueUrl=self.observer_queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )
            self._observed.extend(drained)
        return drained

    def observed_events(self, detail_type: str | None = None, *, model_name: str | None = None) -> list[dict]:
        """Every event the project emitted since the sandbox started (as EventBridge delivered them)."""
        self.drain_observer()
        return [
            event
            for event in self._observed
            if (detail_type is None or event.get("detail-type") == detail_type)
            and (model_name is None or (event.get("detail") or {}).get("model_name") == model_name)
        ]

    def wait_for_events(
        self, detail_type: str | None = None, *, model_name: str | None = None, count: int = 1, timeout: float = 60.0
    ) -> list[dict]:
        """Poll the observer until at least `count` matching events were emitted; returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.observed_events(detail_type, model_name=model_name)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                wanted = " ".join(filter(None, [detail_type, model_name and f"for {model_name}"]))
                raise TimeoutError(f"{len(found)} of {count} events ({wanted or 'any'}) after {timeout:.0f} s")
            time.sleep(0.1)

    def dlq_messages(self, route: str, *, delete: bool = False) -> list[DeadLetter]:
        """The messages in `route`'s dead-letter queue (left there unless `delete`).

        A FIFO dead-letter queue hides a message group's later messages while earlier ones are in flight, as SQS
        does: without `delete` it shows the first 10 of each group; with `delete` every letter is read.
        """
        queue_url = self.wiring[route].dead_letter_queue_url
        sqs = self.client("sqs")
        received: list[dict] = []
        while True:  # hide (or delete) what was read, so the next receive returns the rest
            batch = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=30,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            received += batch
            if delete:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
                sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        if not delete:
            for start in range(0, len(received), 10):
                chunk = received[start : start + 10]
                sqs.change_message_visibility_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for i, m in enumerate(chunk)
                    ],
                )
        return [_dead_letter(route, message) for message in received]

    def queue_depths(self) -> dict[str, dict[str, int]]:
        """Visible, in-flight and delayed message counts of every route queue."""
        sqs = self.client("sqs")
        depths = {}
        for name, wiring in sorted(self.wiring.items()):
            attributes = sqs.get_queue_attributes(QueueUrl=wiring.queue_url, AttributeNames=list(_QUIET_ATTRIBUTES))
            counts = [int(attributes["Attributes"].get(attribute, 0)) for attribute in _QUIET_ATTRIBUTES]
            depths[name] = dict(zip(("visible", "in_flight", "delayed"), counts, strict=True))
        return depths

    def wait_until_quiet(self, timeout: float = 60.0, *, stable_for: float = 0.3, interval: float = 0.05) -> None:
        """Return once every route queue is empty (visible, in flight, delayed) and every worker idle.

        The state must hold, unchanged, for `stable_for` seconds; a batch that starts and ends between
        two looks changes the worker's batch counter and restarts the window. Raises `TimeoutError`
        naming what is still pending, and `SandboxError` when a route's workers are in a crash loop (a worker that
        died otherwise is replaced meanwhile: see the module's docstring).
        """
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        last_snapshot: tuple | None = None
        while True:
            self._check_workers_alive()
            depths = self.queue_depths()
            statuses = {name: self.worker_status(name) or {} for name in [*self.wiring, *self._replicas]}
            snapshot = (
                tuple(sorted((name, tuple(d.values())) for name, d in depths.items())),
                tuple(sorted((name, s.get("state"), s.get("batches")) for name, s in statuses.items())),
            )
            quiet = all(sum(d.values()) == 0 for d in depths.values()) and all(
                s.get("state") == "idle" for s in statuses.values()
            )
            now = time.monotonic()
            if quiet and snapshot == last_snapshot and quiet_since is not None:
                if now - quiet_since >= stable_for:
                    return
            elif quiet:
                quiet_since = now
            else:
                quiet_since = None
            last_snapshot = snapshot
            if now > deadline:
                pending = [
                    f"{name}: {d['visible']} visible, {d['in_flight']} in flight, {d['delayed']} delayed"
                    for name, d in depths.items()
                    if sum(d.values())
                ]
                busy = [
                    f"worker {name} is {s.get('state', 'unknown')}"
                    for name, s in statuses.items()
                    if s.get("state") != "idle"
                ]
                raise TimeoutError(f"the pipeline is not quiet after {timeout:.0f} s: {'; '.join(pending + busy)}")
            time.sleep(interval)

    def check_running(self) -> None:
        """Raise `SandboxError` when a server or a route worker has exited."""
        for child in self._servers.values():
            if not child.alive():
                raise SandboxError(child.exited_message())
        self._check_workers_alive()

    def _check_workers_alive(self) -> None:
        if self._owned:
            if self._fatal is not None:
                raise self._fatal
            if self._started and (self._supervisor is None or not self._supervisor.is_alive()) and not self._stopping:
                for name, child in self._route_workers().items():
                    if not child.alive():
                        raise SandboxError(f"the worker of route {name!r} died: {child.exited_message()}")
            return
        for name, pid in self._worker_pids.items():
            # The owner replaces a dead worker: its status file names the current process.
            current = (self.worker_status(name) or {}).get("pid") or pid
            for candidate in dict.fromkeys([pid, current]):
                try:
                    os.kill(candidate, 0)
                    break
                except ProcessLookupError:
                    continue
                except PermissionError:
                    break
            else:
                raise SandboxError(
                    f"the worker of route {name!r} (pid {current}) is gone; is the sandbox still running?"
                )

    def worker_log_lines(self, names: Iterable[str] | None = None) -> list[dict]:
        """The JSON log lines of the route workers (their own and their handler's), with a `worker` key."""
        lines = []
        for name in sorted(names if names is not None else self.wiring):
            path = self.log_path(name)
            if not path.exists():
                continue
            for text in path.read_text(errors="replace").splitlines():
                if text.startswith("{"):
                    try:
                        line = json.loads(text)
                    except ValueError:
                        continue
                    if isinstance(line, dict):
                        lines.append({**line, "worker": name})
        return lines

    def log_tail(self, name: str, lines: int = 30) -> str:
        return tail(self.log_path(name), lines)

    # --- the registry ----------------------------------------------------------------------------------

    def mlflow_client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.mlflow_tracking_uri, registry_uri=self.mlflow_tracking_uri)

    def registry_state(self) -> list[dict]:
        """Every registered model with its aliases, tags and versions (sources, run ids, tags), sorted."""
        client = self.mlflow_client()
        models, token = [], None
        while True:
            page = client.search_registered_models(max_results=1000, page_token=token)
            models += list(page)
            token = page.token
            if not token:
                break
        state = []
        for name in sorted(model.name for model in models):
            model = client.get_registered_model(name)  # search results may leave out aliases
            versions = client.search_model_versions(f"name='{name}'", max_results=10000)
            state.append(
                {
                    "name": name,
                    "aliases": dict(sorted((model.aliases or {}).items())),
                    "tags": dict(sorted((model.tags or {}).items())),
                    "versions": [
                        {
                            "version": str(version.version),
                            "source": version.source,
                            "run_id": version.run_id or None,
                            "model_id": getattr(version, "model_id", None) or None,
                            "status": str(version.status),
                            "tags": dict(sorted((version.tags or {}).items())),
                        }
                        for version in sorted(versions, key=lambda v: int(v.version))
                    ],
                }
            )
        return state


def _dead_letter(route: str, message: dict) -> DeadLetter:
    attributes = {
        name: value.get("StringValue", "") for name, value in sorted(message.get("MessageAttributes", {}).items())
    }
    try:
        event = json.loads(message.get("Body", ""))
    except ValueError:
        event = None
    return DeadLetter(
        route=route,
        message_id=message["MessageId"],
        body=message.get("Body", ""),
        event=event if isinstance(event, dict) else None,
        reason=attributes.get("reason") or None,
        error=attributes.get("error") or None,
        receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
        attributes=attributes,
        message_group_id=message.get("Attributes", {}).get("MessageGroupId") or None,
    )
