"""The whole pipeline on one machine: moto's server, a real MLflow server and one worker per route.

`Sandbox` builds, from `functions.routing` only, what the CDK stack builds on AWS (`sandbox.provisioning`), runs
each route's handler in a worker process and replaces a worker that dies (`sandbox.supervision`), and answers what
the pipeline did (`sandbox.inspection`). This module holds its settings, endpoints and life cycle.

    with Sandbox() as sandbox:
        sandbox.upload_dir("my-model", key_prefix="models/churn/1/")
        sandbox.wait_until_quiet(timeout=60)
        print(sandbox.observed_events())

Nothing listens beyond 127.0.0.1, and no AWS account or Docker is needed.
"""

from __future__ import annotations

import atexit
import json
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from functions.routing import DEFAULT_ARTIFACT_ROOT_PREFIX, ROUTES, Bus, Route
from sandbox.environment import DUMMY_CREDENTIALS, REGION, check_dependencies
from sandbox.inspection import Inspection
from sandbox.processes import (
    LOCALHOST,
    ChildProcess,
    CrashLoopGuard,
    SandboxError,
    check_port_free,
    free_port,
    stop_all,
    wait_until_healthy,
)
from sandbox.provisioning import (
    DEFAULT_BUCKET,
    IDEMPOTENCY_TABLE,
    NAME_PREFIX,
    PROJECT_BUS,
    WEBHOOK_SECRET,
    Provisioning,
    RouteWiring,
)
from sandbox.supervision import CRASH_LOOP_DEATHS, CRASH_LOOP_WINDOW_SECONDS, Supervision, WorkerReplacement


class Sandbox(Provisioning, Supervision, Inspection):
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
        existing_objects: a directory whose files (keys relative to it, `MLmodel` files last) are in the bucket
            before the pipeline starts, as in a bucket adopted with its history: no event announces them.
        bucket_event_bridge: False starts the bucket with EventBridge notifications off (an existing bucket
            before `python -m ops preflight` says to turn them on); nothing is then registered until they are.
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
        existing_objects: str | Path | None = None,
        bucket_event_bridge: bool = True,
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
        self.existing_objects = Path(existing_objects) if existing_objects is not None else None
        self.bucket_event_bridge = bucket_event_bridge

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
                f"not a sandbox description (the JSON line of `python -m sandbox --json`): {error}"
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
