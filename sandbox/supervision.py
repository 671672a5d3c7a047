"""Supervising the sandbox's servers and workers: moto, MLflow, the webhook's function URL, one worker per route.

Each route's handler runs in a worker process (`sandbox.worker`) with the environment
`functions.settings.function_environment` gives it on AWS, pointed at the local endpoints. moto keeps a FIFO
group locked while any of its messages is in flight, as SQS does, but checks that lock when a ReceiveMessage
starts: a second consumer long-polling the same FIFO queue can be handed a later message of a group whose earlier
one is still in flight. So a FIFO queue gets one worker (`start_worker` refuses a second), which is all Lambda's
ordering needs to be reproduced.

A route worker that dies (killed, out of memory) or overruns the route's function timeout (then the sandbox kills
it, as Lambda ends the invocation) is replaced by a new process, as Lambda gives the next invocation a new execution
environment; the message it held comes back when its visibility timeout ends. Each replacement is one line in the
progress output and in `logs/sandbox.log` (route, pid, how it ended, the new pid), and is kept in
`Sandbox.worker_replacements`. A route whose workers die `CRASH_LOOP_DEATHS` times within
`CRASH_LOOP_WINDOW_SECONDS` before handling a batch (a handler that cannot start: bad configuration) is a crash
loop: it is not replaced again, and `check_running`/`wait_until_quiet` raise `SandboxError` with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.project import FIFO_SUFFIX, IMPORT_ROOT, module_name
from functions.routing import WEBHOOK, Route
from functions.settings import function_environment, webhook_function_environment
from sandbox.environment import DUMMY_CREDENTIALS, REGION, base_environment
from sandbox.processes import LOCALHOST, ChildProcess, CrashLoopGuard, SandboxError, wait_until_healthy
from sandbox.provisioning import NAME_PREFIX, WEBHOOK_SECRET, RouteWiring
from sandbox.worker import EVENT_SOURCE_ENDPOINT_VARIABLE, route_to_json

# MLflow refuses webhooks to http:// and private addresses unless told otherwise: the sandbox's endpoint is both.
# A 1 s cache lets a webhook created (or deleted) in a test take effect at once.
MLFLOW_WEBHOOK_SETTINGS = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_CACHE_TTL": "1",
}
CRASH_LOOP_DEATHS = 3
CRASH_LOOP_WINDOW_SECONDS = 120.0
"""A route's workers dying 3 times within 2 minutes before handling a batch is a crash loop (each start imports the
handler: a few seconds; a dying worker is replaced at once, so 3 deaths fit the window even on a loaded machine)."""
SUPERVISE_INTERVAL_SECONDS = 0.2
TIMEOUT_GRACE_SECONDS = 2.0
"""How far past the route's function timeout a busy worker may go before the sandbox kills it (the worker's own
receive and delete calls are not part of Lambda's invocation)."""


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


class Supervision:
    """The sandbox's processes: start them, replace a dead route worker, pause or stop a server on request."""

    aws_port: int | None
    mlflow_port: int | None
    webhook_port: int | None
    workdir: Path | None
    bucket: str
    artifact_root_prefix: str
    event_bus: str
    idempotency_table: str
    routes: tuple[Route, ...]
    worker_counts: dict[str, int]
    wiring: dict[str, RouteWiring]
    worker_replacements: list[WorkerReplacement]
    _handlers: dict[str, str]
    _function_settings: dict[str, Any]
    _functions_tracking_uri: str | None
    _functions_aws_endpoint_url: str | None
    _log_level: str
    _progress: Callable[[str], None]
    _owned: bool
    _started: bool
    _stopping: bool
    _servers: dict[str, ChildProcess]
    _workers: dict[str, ChildProcess]
    _extra_workers: list[ChildProcess]
    _replicas: dict[str, ChildProcess]
    _fifo_consumers: dict[str, ChildProcess]
    _worker_pids: dict[str, int]
    _worker_specs: dict[str, dict[str, Any]]
    _workers_lock: threading.RLock
    _supervisor: threading.Thread | None
    _supervisor_stop: threading.Event
    _crash_loops: CrashLoopGuard
    _fatal: SandboxError | None

    # Provided by the sandbox: its endpoints, paths and AWS clients.
    aws_endpoint_url: str
    mlflow_tracking_uri: str
    webhook_url: str
    artifact_root: str
    client: Callable[[str], Any]
    client_environment: Callable[[], dict[str, str]]
    log_path: Callable[[str], Path]
    status_path: Callable[[str], Path]
    _workdir: Callable[[], Path]

    # --- servers ---------------------------------------------------------------------------------------

    def _start_servers(self) -> None:
        env = {**base_environment(), **self.client_environment()}
        env.pop("MLFLOW_TRACKING_URI")
        self._servers["moto"] = ChildProcess.start(
            "moto server",
            [sys.executable, "-m", module_name("sandbox.moto_server"), "-H", LOCALHOST, "-p", str(self.aws_port)],
            env=env,
            log_path=self.log_path("moto"),
            cwd=IMPORT_ROOT,
        )
        self._start_mlflow_process()

    def _start_mlflow_process(self) -> None:
        env = {**base_environment(), **self.client_environment()}
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

    def _start_webhook_endpoint(self) -> None:
        """The webhook function behind a local function URL, with its AWS environment pointed at this sandbox."""
        secret_arn = self.client("secretsmanager").describe_secret(SecretId=WEBHOOK_SECRET)["ARN"]
        env = {
            **base_environment(),
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
                *(sys.executable, "-m", module_name("sandbox.function_url"), "--handler", WEBHOOK.handler),
                *("--host", LOCALHOST, "--port", str(self.webhook_port), "--parent-pid", str(os.getpid())),
                *("--function-name", f"{NAME_PREFIX}-{WEBHOOK.name}", "--memory-mb", str(WEBHOOK.memory_mb)),
                *("--timeout-seconds", str(WEBHOOK.timeout_seconds)),
            ],
            env=env,
            log_path=self.log_path(WEBHOOK.name),
            cwd=IMPORT_ROOT,
        )

    # --- route workers ---------------------------------------------------------------------------------

    def worker_environment(self, route: Route, *, queue_url: str, dead_letter_queue_url: str) -> dict[str, str]:
        """A route function's environment on AWS (`function_environment`), pointed at this sandbox."""
        function_name = f"{NAME_PREFIX}-{route.name}"
        return {
            **base_environment(),
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
                *(sys.executable, "-m", module_name("sandbox.worker"), "--route", route.name, "--queue-url", queue_url),
                *("--route-json", route_to_json(route)),
                *("--region", REGION, "--function-name", f"{NAME_PREFIX}-{worker_name}"),
                *("--status-file", str(self.status_path(worker_name)), "--parent-pid", str(os.getpid())),
                *(("--handler", handler) if handler else ()),
            ],
            env=self.worker_environment(
                route, queue_url=queue_url, dead_letter_queue_url=dead_letter_queue_url or queue_url
            ),
            log_path=self.log_path(worker_name),
            cwd=IMPORT_ROOT,
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
        line = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "level": level, "logger": "sandbox.supervision"}
        with open(self.log_path("sandbox"), "a") as log:
            log.write(json.dumps({**line, "message": message, **fields}, default=str) + "\n")

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
