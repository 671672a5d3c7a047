"""`python -m ops backfill` in the sandbox: registrations per second, MLflow's concurrency and requests per model.

The bucket is seeded with N copies of one real saved model under distinct keys while its EventBridge notifications
are off (an adopted bucket's history), then notifications go on, as the preflight says, and the backfill runs once at
`--rate`. Beside it, in the same run, the reference floor: listing the bucket's model location alone (ListObjectsV2,
pages of 1,000 keys), which every backfill pays before anything is sent.

- Registrations per second: N over the time from the command's start to the last `Model Version Registered` event
  (the harness's observer queue, `bench.pipeline.Observer`); the command's own time (listing, HeadObject per model,
  the registry read, PutEvents) is reported too.
- Peak concurrent MLflow requests: a counting proxy (`reliability.proxy.CountingProxy`) between the route functions
  and MLflow, against the cap the worker counts give (register + validate + the aliases route's one FIFO worker).
- MLflow requests per backfilled model: the MLflow server's access log over the run (the functions' requests and
  the command's own registry reads), divided by N.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.pipeline import POLICIES, REGISTERED, VALIDATED, Observer, mlflow_api_paths
from ops.__main__ import main as ops
from reliability.proxy import CountingProxy
from sandbox import Sandbox, temporary_environment
from sandbox.processes import free_port

WORKERS = {"register": 5, "validate": 2}
"""The deployed defaults' concurrency (registerMaxConcurrency 5) with two validate workers, as the burst scenario."""
NAMES = 10
"""Registered model names the N copies are spread over."""


def seed(sandbox: Sandbox, model_dir: Path, *, models: int) -> list[str]:
    """N copies of the model under `models/bench-backfill-<i % NAMES>/<i>/` (8 threads); returns the MLmodel keys."""
    s3 = sandbox.client("s3")
    files = {p.relative_to(model_dir).as_posix(): p.read_bytes() for p in sorted(model_dir.rglob("*")) if p.is_file()}
    mlmodel = files.pop("MLmodel")

    def put(index: int) -> str:
        prefix = f"models/bench-backfill-{index % NAMES}/{index:06d}/"
        for name, body in files.items():
            s3.put_object(Bucket=sandbox.bucket, Key=prefix + name, Body=body)
        s3.put_object(Bucket=sandbox.bucket, Key=prefix + "MLmodel", Body=mlmodel)
        return prefix + "MLmodel"

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(put, range(models)))


def list_floor(sandbox: Sandbox) -> dict:
    """Listing the model location alone, as the backfill lists it: ListObjectsV2 pages of 1,000 keys."""
    paginator = sandbox.client("s3").get_paginator("list_objects_v2")
    started = time.monotonic()
    pages = objects = 0
    for page in paginator.paginate(Bucket=sandbox.bucket, Prefix="models/"):
        pages += 1
        objects += page.get("KeyCount", 0)
    seconds = time.monotonic() - started
    return {"objects": objects, "pages": pages, "seconds": seconds, "seconds_per_million_keys": seconds / objects * 1e6}


def run(*, model_dir: Path, workdir: Path, models: int, rate: float, progress: Callable[[str], None]) -> dict:
    """Start a sandbox on a bucket with N models and notifications off, backfill them, stop it."""
    mlflow_port = free_port()
    proxy = CountingProxy(mlflow_port).start()
    cap = sum(WORKERS.values()) + 1
    try:
        with Sandbox(
            workdir=workdir,
            mlflow_port=mlflow_port,
            functions_tracking_uri=proxy.url,
            worker_counts=WORKERS,
            bucket_event_bridge=False,
            function_settings={"policies_dir": str(POLICIES)},
            progress=progress,
        ) as sandbox:
            progress(f"backfill: seeding {models} models (notifications off)")
            keys = seed(sandbox, model_dir, models=models)
            sandbox.client("s3").put_bucket_notification_configuration(
                Bucket=sandbox.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
            sandbox.wait_until_quiet(timeout=60)
            listing = list_floor(sandbox)
            observer = Observer(sandbox)
            observer.start()
            try:
                progress(f"backfill: {models} models at --rate {rate:g}")
                paths_before = len(mlflow_api_paths(sandbox))
                proxy.peak = proxy.requests = 0
                out = io.StringIO()
                started = time.monotonic()
                with temporary_environment(sandbox.client_environment()), contextlib.redirect_stdout(out):
                    status = ops(["--sandbox", json.dumps(sandbox.info()), "backfill", "--rate", str(rate)])
                command_s = time.monotonic() - started
                timeout = 120 + models * 2.0
                observer.wait_for(keys, REGISTERED, timeout=timeout, progress=progress)
                registered_s = max(observer.arrivals.by_key[k][REGISTERED] for k in keys) - started
                observer.wait_for(keys, VALIDATED, timeout=timeout, progress=progress)
                sandbox.wait_until_quiet(timeout=timeout, stable_for=1.0)
                requests = len(mlflow_api_paths(sandbox)) - paths_before
                dead_letters = {name: len(sandbox.dlq_messages(name)) for name in sandbox.wiring}
            finally:
                observer.stop()
                observer.join(timeout=5)
    finally:
        proxy.stop()
    return {
        "models": models,
        "rate": rate,
        "exit_status": status,
        "summary": out.getvalue().strip().splitlines()[-1],
        "command_s": command_s,
        "registered_s": registered_s,
        "registered_per_s": models / registered_s,
        "peak_concurrent_mlflow_requests": proxy.peak,
        "cap": cap,
        "function_mlflow_requests": proxy.requests,
        "mlflow_requests": requests,
        "mlflow_requests_per_model": requests / models,
        "list": listing,
        "dead_letters": dead_letters,
    }
