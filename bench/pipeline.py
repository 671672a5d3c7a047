"""The pipeline in the sandbox: end-to-end latency, throughput and MLflow requests per upload.

Times are the harness's `time.monotonic()`: t0 just before the `MLmodel` PUT (the other files of the model are
already there), and each stage's time when its event (`Model Version Registered`, `Model Version Validated`,
`Model Alias Moved`) reaches the harness through a long-polled observer queue (moto answers a long poll as soon as
a message arrives). Sub-millisecond resolution; it includes EventBridge → SQS → observer delivery, as a consumer of
the bus would see it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import Sandbox, temporary_environment

POLICIES = Path(__file__).parent / "policies"
REGISTERED, VALIDATED, MOVED = "Model Version Registered", "Model Version Validated", "Model Alias Moved"
STAGES = (REGISTERED, VALIDATED, MOVED)


@dataclass
class Arrivals:
    """When each stage's event arrived, by the upload's key prefix (`origin` of the Registered event)."""

    by_key: dict[str, dict[str, float]] = field(default_factory=dict)
    version_key: dict[tuple[str, str], str] = field(default_factory=dict)
    lock: threading.Condition = field(default_factory=threading.Condition)


class Observer(threading.Thread):
    """Long-polls the sandbox's observer queue and records each event's arrival time per upload."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(daemon=True, name="bench-observer")
        self._sqs = sandbox.client("sqs")
        self._url = sandbox.observer_queue_url
        self._stopping = threading.Event()
        self.arrivals = Arrivals()
        self.unmatched: list[dict] = []

    def run(self) -> None:
        while not self._stopping.is_set():
            messages = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            now = time.monotonic()
            if not messages:
                continue
            with self.arrivals.lock:  # recorded before deleted: an empty queue means every event is recorded
                for message in messages:
                    self._record(json.loads(message["Body"]), now)
                self.arrivals.lock.notify_all()
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def drain(self, timeout: float) -> None:
        """Until every event put on the observer queue so far has been recorded."""
        deadline = time.monotonic() + timeout
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        while time.monotonic() < deadline:
            attributes = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=names)["Attributes"]
            if all(attributes.get(name) == "0" for name in names):
                return
            with self.arrivals.lock:
                self.arrivals.lock.wait(0.2)  # woken by the next recorded batch
        raise TimeoutError(f"the observer queue still held events after {timeout:.0f} s")

    def _record(self, event: dict, now: float) -> None:
        detail, kind = event.get("detail") or {}, event.get("detail-type")
        version = (detail.get("model_name"), str(detail.get("version")))
        if kind == REGISTERED:
            key = (detail.get("artifact") or {}).get("key", "")
            self.arrivals.version_key[version] = key
        else:
            key = self.arrivals.version_key.get(version)
        if key is None or kind not in STAGES:
            self.unmatched.append(event)
            return
        self.arrivals.by_key.setdefault(key, {}).setdefault(kind, now)

    def wait_for(
        self, keys: list[str], stage: str, timeout: float, progress: Callable[[str], None] | None = None
    ) -> None:
        """Until every key's upload has reached `stage`; with `progress`, a line a minute of how many have."""
        started = time.monotonic()
        deadline, report_at = started + timeout, started + 60
        with self.arrivals.lock:
            while not all(stage in self.arrivals.by_key.get(k, {}) for k in keys):
                now = time.monotonic()
                if now >= deadline or (progress is not None and now >= report_at):
                    done = sum(stage in self.arrivals.by_key.get(k, {}) for k in keys)
                    if now >= deadline:
                        raise TimeoutError(f"{done} of {len(keys)} uploads reached {stage!r} in {timeout:.0f} s")
                    if progress is not None:
                        progress(f"{done} of {len(keys)} uploads reached {stage!r} ({now - started:.0f} s)")
                    report_at = now + 60
                self.arrivals.lock.wait(min(deadline - now, 0.5))

    def stop(self) -> None:
        self._stopping.set()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p50, p95) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


class Stager:
    """Puts a model's files (all but `MLmodel`) under fresh keys, then its `MLmodel` on demand."""

    def __init__(self, sandbox: Sandbox, model_dir: Path) -> None:
        self._s3 = sandbox.client("s3")
        self._bucket = sandbox.bucket
        files = sorted(p for p in model_dir.rglob("*") if p.is_file())
        self._files = {p.relative_to(model_dir).as_posix(): p.read_bytes() for p in files}
        self._mlmodel = self._files.pop("MLmodel")

    def stage(self, model_name: str) -> str:
        prefix = f"models/{model_name}/{uuid.uuid4().hex[:12]}/"
        for name, body in self._files.items():
            self._s3.put_object(Bucket=self._bucket, Key=prefix + name, Body=body)
        return prefix

    def trigger(self, prefix: str) -> tuple[str, float]:
        started = time.monotonic()
        self._s3.put_object(Bucket=self._bucket, Key=prefix + "MLmodel", Body=self._mlmodel)
        return prefix + "MLmodel", started


def mlflow_api_requests(sandbox: Sandbox) -> int:
    """How many MLflow REST calls the server has logged so far (its access log lines with /api/)."""
    return len(mlflow_api_paths(sandbox))


def mlflow_api_paths(sandbox: Sandbox) -> list[str]:
    """The REST path of every MLflow call the server logged so far, in order."""
    text = sandbox.log_path("mlflow").read_text(errors="replace")
    return [match.group(1) for match in _API_PATH.finditer(text)]


_API_PATH = re.compile(r"[A-Z]+ (/api/[^ ?\"]+)")


def process_groups(sandbox: Sandbox) -> dict[str, int]:
    """The sandbox's servers and route workers by name → the process group each leads (its own session)."""
    pids = sandbox.info()["pids"]
    groups = {name: int(pid) for name, pid in pids.items() if name != "workers" and pid}
    return groups | {f"worker {name}": int(pid) for name, pid in pids["workers"].items()}


def cpu_seconds(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) each process group has used so far, children included (Linux `/proc`)."""
    ticks = os.sysconf("SC_CLK_TCK")
    names = {pid: name for name, pid in groups.items()}
    totals = dict.fromkeys(groups, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()  # from the 3rd field on: state, ppid, pgrp, ...
        name = names.get(int(fields[2]))
        if name is not None:
            totals[name] += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    totals["harness"] = sum(os.times()[:2])
    return totals


def peak_rss_mb(pid: int) -> float | None:
    """A process's peak resident memory (VmHWM), in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def measure_latency(sandbox: Sandbox, observer: Observer, stager: Stager, *, uploads: int, models: int) -> dict:
    """One upload at a time: each waits for its alias move before the next starts."""
    names = [f"bench-latency-{uuid.uuid4().hex[:6]}-{i}" for i in range(models)]
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for index in range(uploads):
        prefix = stager.stage(names[index % models])
        key, started = stager.trigger(prefix)
        observer.wait_for([key], MOVED, timeout=60)
        arrived = observer.arrivals.by_key[key]
        for stage in STAGES:
            samples[stage].append(arrived[stage] - started)
    return {
        "uploads": uploads,
        "models": models,
        **{
            stage: {
                "p50_s": statistics.median(values),
                "p95_s": percentile(values, 0.95),
                "max_s": max(values),
            }
            for stage, values in samples.items()
        },
    }


def measure_throughput(sandbox: Sandbox, observer: Observer, stager: Stager, *, uploads: int, models: int) -> dict:
    """All uploads at once (MLmodel PUTs from 8 threads); events per second until the last one arrives."""
    names = [f"bench-throughput-{uuid.uuid4().hex[:6]}-{i}" for i in range(models)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        prefixes = list(pool.map(stager.stage, [names[i % models] for i in range(uploads)]))
    sandbox.wait_until_quiet(timeout=120)
    paths_before = len(mlflow_api_paths(sandbox))
    groups = process_groups(sandbox)
    cpu_before = cpu_seconds(groups)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = [key for key, _ in pool.map(stager.trigger, prefixes)]
    timeout = 60 + uploads * 2.0
    observer.wait_for(keys, REGISTERED, timeout=timeout)
    observer.wait_for(keys, VALIDATED, timeout=timeout)
    # Verdicts of concurrent uploads reach the aliases route in any order: a version that arrives after a newer one
    # keeps the alias where it is (no `Model Alias Moved`), so the run is complete when the route has drained.
    sandbox.wait_until_quiet(timeout=timeout)
    observer.drain(timeout=30)
    cpu_after = cpu_seconds(groups)
    paths = mlflow_api_paths(sandbox)[paths_before:]
    requests = len(paths)
    arrived = [observer.arrivals.by_key[k] for k in keys]
    registered_s = max(a[REGISTERED] for a in arrived) - started
    completed_s = max(max(a.values()) for a in arrived) - started
    return {
        "uploads": uploads,
        "models": models,
        "registered_per_s": uploads / registered_s,
        "completed_per_s": uploads / completed_s,
        "registered_s": registered_s,
        "completed_s": completed_s,
        "alias_moves": sum(MOVED in a for a in arrived),
        "challenger_on_newest_version": _challenger_on_newest(sandbox, names),
        "mlflow_requests": requests,
        "mlflow_requests_per_upload": requests / uploads,
        "mlflow_requests_by_path": dict(Counter(paths).most_common()),
        "cpu_ms_per_upload": {name: (cpu_after[name] - cpu_before[name]) * 1000 / uploads for name in cpu_after},
    }


def _challenger_on_newest(sandbox: Sandbox, names: list[str]) -> bool:
    """Whether every model's `challenger` ended on its newest version, as the benchmark's policy says it must."""
    client = sandbox.mlflow_client()
    for name in names:
        newest = max(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        if client.get_registered_model(name).aliases.get("challenger") != str(newest):
            return False
    return True


def measure_raw_registry(sandbox: Sandbox, *, writes: int, models: int) -> dict:
    """The same registry writes the register route makes (search by source, create version), from one client."""
    client = sandbox.mlflow_client()
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # one INFO line per created version otherwise
    names = [f"bench-raw-{uuid.uuid4().hex[:6]}-{i}" for i in range(models)]
    for name in names:
        client.create_registered_model(name)
    started = time.monotonic()
    for index in range(writes):
        name, source = names[index % models], f"s3://{sandbox.bucket}/models/raw/{index}"
        client.search_model_versions(f"name='{name}' and source_path='{source}'", max_results=1)
        client.create_model_version(name, source)
    elapsed = time.monotonic() - started
    return {"writes": writes, "models": models, "seconds": elapsed, "writes_per_s": writes / elapsed}


def measure_naive_requests(sandbox: Sandbox, *, uploads: int, models: int) -> dict:
    """A naive pipeline per upload: `mlflow.register_model`, `get_run`, `set_registered_model_alias`.

    No deduplication and no validation: it registers whatever arrives. (`await_registration_for=0`: the server
    creates versions READY, so waiting would only add a poll; the naive pipeline gets that for free.)
    """
    client = sandbox.mlflow_client()
    names = [f"bench-naive-{uuid.uuid4().hex[:6]}-{i}" for i in range(models)]
    experiment = client.create_experiment(f"bench-naive-{uuid.uuid4().hex[:8]}")
    runs = [client.create_run(experiment).info.run_id for _ in names]
    before = mlflow_api_requests(sandbox)
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with (
        temporary_environment(sandbox.client_environment()),
        # The fluent API prefers a URI set with mlflow.set_tracking_uri (by anything earlier in this process, such as
        # a test) over the environment: point it at this sandbox for these calls only, and restore what was there.
        _use_tracking_uri(sandbox.mlflow_tracking_uri),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        _naive_uploads(client, names, runs, uploads=uploads, bucket=sandbox.bucket)
    requests = mlflow_api_requests(sandbox) - before
    return {"uploads": uploads, "mlflow_requests": requests, "mlflow_requests_per_upload": requests / uploads}


def _naive_uploads(client: object, names: list[str], runs: list[str], *, uploads: int, bucket: str) -> None:
    import mlflow

    models = len(names)
    for index in range(uploads):
        name, run_id = names[index % models], runs[index % models]
        source = f"s3://{bucket}/models/{name}/{index}"
        version = mlflow.register_model(source, name, await_registration_for=0)
        client.get_run(run_id)
        client.set_registered_model_alias(name, "challenger", version.version)


def _handler_seconds(sandbox: Sandbox) -> dict[str, dict[str, float]]:
    """Per route: batches and the summed handler durations the workers logged ("batch done", `duration_ms`)."""
    totals: dict[str, dict[str, float]] = {}
    for line in sandbox.worker_log_lines():
        if line.get("message") == "batch done":
            route = totals.setdefault(line["worker"], {"batches": 0, "seconds": 0.0})
            route["batches"] += 1
            route["seconds"] += line.get("duration_ms", 0) / 1000
    return totals


def run(
    *,
    model_dir: Path,
    workdir: Path,
    latency_uploads: int,
    throughput_uploads: int,
    models: int,
    progress: Callable[[str], None],
) -> dict:
    """Start a sandbox, measure, stop it."""
    with Sandbox(workdir=workdir, function_settings={"policies_dir": str(POLICIES)}, progress=progress) as sandbox:
        observer = Observer(sandbox)
        observer.start()
        try:
            stager = Stager(sandbox, model_dir)
            progress(f"latency: {latency_uploads} uploads, one at a time")
            latency = measure_latency(sandbox, observer, stager, uploads=latency_uploads, models=min(models, 10))
            progress(f"throughput: {throughput_uploads} uploads across {models} models")
            throughput = measure_throughput(sandbox, observer, stager, uploads=throughput_uploads, models=models)
            progress(f"raw MLflow capacity: {throughput_uploads} searches + version creations")
            raw = measure_raw_registry(sandbox, writes=throughput_uploads, models=models)
            progress(f"naive pipeline: {throughput_uploads} uploads")
            naive = measure_naive_requests(sandbox, uploads=throughput_uploads, models=models)
            dead_letters = {name: len(sandbox.dlq_messages(name)) for name in sandbox.wiring}
            handler_seconds = _handler_seconds(sandbox)
            rss = {name: peak_rss_mb(pid) for name, pid in sandbox.info()["pids"]["workers"].items()}
        finally:
            observer.stop()
            observer.join(timeout=5)
    return {
        "latency": latency,
        "throughput": throughput,
        "raw_registry": raw,
        "naive": naive,
        "dead_letters": dead_letters,
        "handler_seconds": handler_seconds,
        "worker_peak_rss_mb": rss,
        "pipeline_uploads": latency_uploads + throughput_uploads,
        "unmatched_events": len(observer.unmatched),
        "sandbox_startup_s": sandbox.startup_seconds,
    }
