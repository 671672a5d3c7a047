"""AWS-side faults: throttles, 5xx and PutEvents partial failures at the HTTP boundary, and the emulator frozen.

- `aws_faults`: the route workers reach moto through a fault-injecting proxy (`reliability.faults`) that answers
  chosen requests with AWS's own errors (S3 `SlowDown`, DynamoDB `ProvisionedThroughputExceededException` and
  `ThrottlingException`, EventBridge throttling and failed entries in a 200 answer, Secrets Manager
  `ServiceUnavailable` and `InternalServiceError`), each often enough to outlast botocore's 3 attempts, so each
  reaches the handler as `Unavailable` and the queue retries the record.
- `emulator_outage`: moto's process group is stopped (SIGSTOP) for 30 s while uploads arrive, and continued: every
  AWS call of the functions (and of the uploaders) waits in moto's backlog and times out or is answered late; the
  emulator's state, in memory, survives. Events S3 never delivered are out of scope (moto emits an upload's event
  while it answers the PutObject, so a frozen moto delays events rather than dropping them); every upload whose
  PutObject succeeded must be registered and validated once.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config

from functions.domain.tags import origin_tag
from reliability.faults import Fault, FaultInjector
from reliability.proxy import CountingProxy
from reliability.scenarios import (
    MLMODEL,
    Result,
    champions_right,
    dead_letters,
    fresh_sandbox,
    model_files,
    upload_model,
    versions_by_model,
)
from sandbox import DUMMY_CREDENTIALS, REGION, Sandbox
from sandbox.processes import free_port

CREDENTIALS_SECRET = "registry-autopilot-mlflow-credentials"  # nosec B105: a secret name, not a value
"""The routes read their MLflow credentials from it (an empty JSON object: the sandbox's MLflow needs none), so
Secrets Manager is on their path as it is on AWS with a secret configured."""

RETRIED = "failed: will be retried"


def aws_fault_plan() -> list[Fault]:
    """One surfacing of each fault: 3 matching requests in a row, as many as the clients' attempts."""
    return [
        Fault("s3", "GetObject", "SlowDown", status=503, times=3),
        Fault("s3", "ListObjectsV2", "SlowDown", status=503, times=3),
        Fault("dynamodb", "PutItem", "ProvisionedThroughputExceededException", times=3),
        Fault("dynamodb", "UpdateItem", "ThrottlingException", times=3),
        Fault("events", "PutEvents", "ThrottlingException", times=3),
        Fault("events", "PutEvents", "InternalFailure", times=3, partial=True),
        Fault("events", "PutEvents", "ThrottlingException", times=3, partial=True),
        Fault("secretsmanager", "GetSecretValue", "ServiceUnavailable", status=503, times=3),
        Fault("secretsmanager", "GetSecretValue", "InternalServiceError", status=400, times=1),
    ]


EXPECTED_REASONS = {
    "artifact_store_throttled",
    "idempotency_store_throttled",
    "event_bus_throttled",
    "event_bus_unavailable",
    "secret_store_unavailable",
}
"""The reasons the plan's faults surface as, whichever record meets them."""


def retries(sandbox: Sandbox) -> dict[str, Any]:
    """The records' retry log lines and `Retried` metrics (EMF) by reason, and whether each line names its record."""
    lines = sandbox.worker_log_lines()
    retried = [line for line in lines if line.get("message") == RETRIED]
    metrics: dict[str, int] = {}
    for line in lines:
        names = [m.get("Name") for d in line.get("_aws", {}).get("CloudWatchMetrics", []) for m in d.get("Metrics", [])]
        if "Retried" in names:
            metrics[line.get("reason", "?")] = metrics.get(line.get("reason", "?"), 0) + 1
    by_reason: dict[str, int] = {}
    for line in retried:
        by_reason[line.get("reason", "?")] = by_reason.get(line.get("reason", "?"), 0) + 1
    anonymous = [
        line.get("reason")
        for line in retried
        if not (line.get("key") or (line.get("model_name") and line.get("version")))
    ]
    return {"logged": by_reason, "metrics": metrics, "lines_without_their_record": anonymous, "lines": retried}


def registered_events(sandbox: Sandbox) -> dict[str, int]:
    """`Model Version Registered` events per model/version (more than one is a re-announcement, tolerated)."""
    counts: dict[str, int] = {}
    for event in sandbox.observed_events("Model Version Registered"):
        name = f"{event['detail']['model_name']}/{event['detail']['version']}"
        counts[name] = counts.get(name, 0) + 1
    return counts


# --- aws-faults -------------------------------------------------------------------------------------------


def aws_faults(uploads: int = 20, models: int = 4) -> Result:
    plan = aws_fault_plan()
    result = Result(
        "aws-faults",
        f"{len(plan)} AWS faults (S3, DynamoDB, EventBridge, Secrets Manager) while {uploads} models upload",
    )
    injector = FaultInjector(plan)
    aws_port = free_port()
    proxy = CountingProxy(aws_port, intercept=injector).start()
    try:
        options = {
            "aws_port": aws_port,
            "functions_aws_endpoint_url": proxy.url,
            "function_settings": {"credentials_secret_arn": CREDENTIALS_SECRET},
        }
        with fresh_sandbox(**options) as sandbox:
            # GIVEN the routes' MLflow credentials in Secrets Manager (read through the proxy on first use)
            sandbox.client("secretsmanager").create_secret(Name=CREDENTIALS_SECRET, SecretString="{}")
            rng = random.Random(13)  # nosec B311: seeded test data, not security
            accuracies: dict[str, dict[str, float]] = {}
            started = time.monotonic()
            # WHEN models upload while the proxy injects the faults
            for i in range(uploads):
                name = f"faults-{i % models}"
                accuracy = round(rng.uniform(0.5, 0.99), 4)
                accuracies.setdefault(name, {})[upload_model(sandbox, name, f"v{i}", accuracy)] = accuracy
            sandbox.wait_until_quiet(timeout=900, stable_for=2.0)
            result.seconds = round(time.monotonic() - started, 1)
            result.observed = _outcome(sandbox, uploads, accuracies)
            retried = retries(sandbox)
            result.observed.update(
                {
                    "faults": injector.report(),
                    "every_fault_injected": injector.all_injected(),
                    "retries_logged": retried["logged"],
                    "retried_metrics": retried["metrics"],
                    "retry_lines_without_their_record": retried["lines_without_their_record"],
                    "expected_reasons_missing": sorted(EXPECTED_REASONS - set(retried["logged"])),
                }
            )
            result.ok = (
                _pipeline_ok(result.observed, uploads)
                and injector.all_injected()
                and not result.observed["expected_reasons_missing"]
                and retried["logged"] == retried["metrics"]
                and not retried["lines_without_their_record"]
            )
    finally:
        proxy.stop()
    return result


# --- emulator-outage --------------------------------------------------------------------------------------


def emulator_outage(uploads: int = 20, outage_seconds: float = 30.0, models: int = 4) -> Result:
    result = Result("emulator-outage", f"moto frozen (SIGSTOP) {outage_seconds:.0f} s while {uploads} models upload")
    with fresh_sandbox() as sandbox:
        # The uploaders' own client: one attempt, and a read timeout longer than the outage, so an upload the outage
        # holds up lands once (a retried PutObject would make a second object version, rightly registered too).
        s3 = boto3.client(
            "s3",
            endpoint_url=sandbox.aws_endpoint_url,
            region_name=REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1},
                read_timeout=outage_seconds + 60,
                max_pool_connections=uploads,
            ),
        )
        rng = random.Random(17)  # nosec B311: seeded test data, not security
        accuracies: dict[str, dict[str, float]] = {}
        failed_uploads: list[str] = []
        lock = threading.Lock()

        def upload(i: int, accuracy: float) -> None:
            name = f"frozen-{i % models}"
            prefix = f"models/{name}/v{i}/"
            try:
                for file, body in [*model_files(accuracy), ("MLmodel", MLMODEL)]:
                    s3.put_object(Bucket=sandbox.bucket, Key=prefix + file, Body=body.encode())
            except Exception as error:  # noqa: BLE001 - an upload the outage failed is counted, not retried
                with lock:
                    failed_uploads.append(f"{prefix}: {type(error).__name__}")
                return
            with lock:
                accuracies.setdefault(name, {})[prefix + "MLmodel"] = accuracy

        started = time.monotonic()
        # GIVEN uploads spread over the outage's first half, a quarter of them before it starts
        spread = outage_seconds / 2
        with ThreadPoolExecutor(max_workers=uploads) as pool:
            futures = []
            paused_at = resumed_at = 0.0
            try:
                for i in range(uploads):
                    if i == uploads // 4:
                        sandbox.pause_aws()  # WHEN the emulator freezes
                        paused_at = time.monotonic()
                    futures.append(pool.submit(upload, i, round(rng.uniform(0.5, 0.99), 4)))
                    time.sleep(spread / uploads)
                time.sleep(max(0.0, outage_seconds - (time.monotonic() - paused_at)))
            finally:
                sandbox.resume_aws()  # AND comes back with its state
                resumed_at = time.monotonic()
            for future in futures:
                future.result()
        sandbox.wait_until_quiet(timeout=900, stable_for=2.0)
        result.seconds = round(time.monotonic() - started, 1)
        delivered = sum(len(keys) for keys in accuracies.values())
        result.observed = {
            "outage_seconds": round(resumed_at - paused_at, 1),
            "recovered_after_resume_seconds": round(time.monotonic() - resumed_at, 1),
            "uploads_failed": failed_uploads,
            **_outcome(sandbox, delivered, accuracies),
        }
        retried = retries(sandbox)
        result.observed.update(
            {
                "retries_logged": retried["logged"],
                "polling_failures_logged": sum(
                    1 for line in sandbox.worker_log_lines() if line.get("message") == "polling failed"
                ),
            }
        )
        result.ok = delivered == uploads - len(failed_uploads) and _pipeline_ok(result.observed, delivered)
    return result


def _outcome(sandbox: Sandbox, expected: int, accuracies: dict[str, dict[str, float]]) -> dict[str, Any]:
    versions = versions_by_model(sandbox)
    origins = [v["tags"].get(origin_tag("key")) for vs in versions.values() for v in vs]
    announced = registered_events(sandbox)
    return {
        "expected_versions": expected,
        "versions": len(origins),
        "distinct_sources": len(set(origins)),
        **champions_right(sandbox, accuracies),
        "registered_events": sum(announced.values()),
        "announced_more_than_once": sorted(name for name, n in announced.items() if n > 1),
        "dead_letters": dead_letters(sandbox),
    }


def _pipeline_ok(observed: dict[str, Any], expected: int) -> bool:
    return (
        observed["versions"] == observed["distinct_sources"] == expected
        and not observed["wrong_champions"]
        and observed["without_verdict"] == 0
        and not any(observed["dead_letters"].values())
    )


AWS_SCENARIOS = {"aws-faults": aws_faults, "emulator-outage": emulator_outage}
