"""The scenarios: each starts a fresh sandbox, does something hostile to it, and measures what happened.

A scenario returns a `Result`: what it tried (`tried`), what it observed (`observed`, numbers and lists),
and `ok`, whether what it observed is what the pipeline promises (the table shows it; nothing is assumed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from functions.domain.delivery import retry_delay
from functions.domain.promotion import parse_history
from functions.domain.tags import TAG_STATUS, history_tag, origin_tag
from functions.routing import REGISTER, REPLAY_SOURCE, ROUTES
from reliability.proxy import CountingProxy
from sandbox import Sandbox
from sandbox.processes import free_port

POLICY = """\
# The reliability scenarios' policy: a metric to rank versions by, and the champion moving on its own.
metrics: {accuracy: {min: 0.0}}
compare: {alias: champion, metric: accuracy, direction: higher}
artifacts: {signature: false, environment: true}
promotion: {aliases: {challenger: always, champion: auto}}
"""

MLMODEL = """\
flavors:
  python_function:
    env: {virtualenv: python_env.yaml}
    loader_module: mlflow.pyfunc.model
    python_version: 3.11.7
mlflow_version: 3.17.2
"""


@dataclass
class Result:
    scenario: str
    tried: str
    ok: bool = False
    seconds: float = 0.0
    observed: dict[str, Any] = field(default_factory=dict)


@contextmanager
def fresh_sandbox(**options: Any) -> Iterator[Sandbox]:
    policies = Path(tempfile.mkdtemp(prefix="reliability-policies-"))
    (policies / "default.yaml").write_text(POLICY)
    settings = {"policies_dir": str(policies), **options.pop("function_settings", {})}
    sandbox = Sandbox(function_settings=settings, handle_signals=False, **options)
    try:
        yield sandbox.start()
    finally:
        sandbox.stop()
        shutil.rmtree(policies, ignore_errors=True)


def model_files(accuracy: float) -> list[tuple[str, str]]:
    """The files of a small plain upload beside its MLmodel (which goes last)."""
    return [
        ("python_env.yaml", "python: 3.11.7\ndependencies: [mlflow==3.17.2]\n"),
        ("requirements.txt", "mlflow==3.17.2\n"),
        ("metrics.json", json.dumps({"accuracy": accuracy})),
    ]


def upload_model(sandbox: Sandbox, name: str, label: str, accuracy: float, *, notify: bool = True) -> str:
    """A small plain upload (MLmodel last) with a metrics.json; returns the MLmodel's key."""
    prefix = f"models/{name}/{label}/"
    for file, body in model_files(accuracy):
        sandbox.put_object(prefix + file, body)
    if not notify:
        sandbox._set_bucket_notifications(enabled=False)
    try:
        sandbox.put_object(prefix + "MLmodel", MLMODEL)
    finally:
        if not notify:
            sandbox._set_bucket_notifications(enabled=True)
    return prefix + "MLmodel"


def s3_event(sandbox: Sandbox, key: str, **detail_overrides: Any) -> dict:
    """The `Object Created` event S3 sends for `key`, as PutEvents takes it (with the object's version and ETag)."""
    head = sandbox.client("s3").head_object(Bucket=sandbox.bucket, Key=key)
    detail = {
        "version": "0",
        "bucket": {"name": sandbox.bucket},
        "object": {
            "key": key,
            "size": head["ContentLength"],
            "etag": head["ETag"].strip('"'),
            "version-id": head.get("VersionId"),
            "sequencer": "0",
        },
        "reason": "PutObject",
        **detail_overrides,
    }
    return {
        "Source": REPLAY_SOURCE,
        "DetailType": "Object Created",
        "Detail": json.dumps(detail),
        "EventBusName": "default",
    }


def put_events(sandbox: Sandbox, entries: list[dict]) -> None:
    events = sandbox.client("events")
    for start in range(0, len(entries), 10):
        response = events.put_events(Entries=entries[start : start + 10])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents refused entries: {response['Entries']}")


def versions_by_model(sandbox: Sandbox) -> dict[str, list[dict]]:
    return {model["name"]: model["versions"] for model in sandbox.registry_state()}


def dead_letters(sandbox: Sandbox) -> dict[str, int]:
    return {name: len(sandbox.dlq_messages(name)) for name in sandbox.wiring}


def dlq_depth(sandbox: Sandbox, route: str) -> int:
    """Messages in a route's DLQ, read without receiving them (a receive would raise their receive count)."""
    attributes = sandbox.client("sqs").get_queue_attributes(
        QueueUrl=sandbox.wiring[route].dead_letter_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def champions_right(sandbox: Sandbox, accuracies: dict[str, dict[str, float]]) -> dict[str, Any]:
    """For each model: is the champion the version with the best accuracy, and has every version a verdict?

    A version that does not beat the champion validated before it fails its `compare` check: a verdict, not a loss.
    """
    state = {model["name"]: model for model in sandbox.registry_state()}
    wrong, unvalidated = [], 0
    for name, by_key in accuracies.items():
        model = state.get(name, {"versions": [], "aliases": {}})
        version_of = {v["tags"].get(origin_tag("key")): v for v in model["versions"]}
        unvalidated += sum(1 for v in model["versions"] if v["tags"].get(TAG_STATUS) not in ("passed", "failed"))
        best_key = max(by_key, key=by_key.__getitem__)
        best = version_of.get(best_key, {}).get("version")
        if model["aliases"].get("champion") != best:
            wrong.append(f"{name}: champion {model['aliases'].get('champion')}, best {best}")
    return {"wrong_champions": wrong, "without_verdict": unvalidated}


# --- 1. duplicates ---------------------------------------------------------------------------------------


def duplicates(artifacts: int = 100, copies: int = 3) -> Result:
    result = Result("duplicates", f"{artifacts} artifacts, each event delivered {copies} times, shuffled")
    with fresh_sandbox() as sandbox:
        # GIVEN artifacts in the bucket whose own events are paused (the copies are the only deliveries)
        keys = [upload_model(sandbox, f"dup-{i % 10}", f"v{i}", 0.5, notify=False) for i in range(artifacts)]
        entries = [s3_event(sandbox, key) for key in keys for _ in range(copies)]
        random.Random(7)  # nosec B311: a seeded shuffle for a test, not security.shuffle(entries)
        started = time.monotonic()
        put_events(sandbox, entries)
        sandbox.wait_until_quiet(timeout=max(120, artifacts * 3))
        result.seconds = round(time.monotonic() - started, 1)
        versions = versions_by_model(sandbox)
        origins = [v["tags"].get(origin_tag("key")) for vs in versions.values() for v in vs]
        result.observed = {
            "events_sent": len(entries),
            "versions": len(origins),
            "distinct_sources": len(set(origins)),
            "dead_letters": dead_letters(sandbox),
        }
        result.ok = len(origins) == artifacts == len(set(origins)) and not any(result.observed["dead_letters"].values())
    return result


# --- 2. outage --------------------------------------------------------------------------------------------


def outage(uploads: int = 50, outage_seconds: float = 30.0, models: int = 5) -> Result:
    result = Result("outage", f"MLflow stopped {outage_seconds:.0f} s while {uploads} models upload, then restarted")
    with fresh_sandbox() as sandbox:
        rng = random.Random(11)  # nosec B311: a seeded shuffle for a test, not security
        accuracies: dict[str, dict[str, float]] = {}
        started = time.monotonic()
        # GIVEN the MLflow server is down
        sandbox.stop_mlflow()
        down_at = time.monotonic()
        # WHEN models upload during the outage (spread over its first half)
        for i in range(uploads):
            name = f"outage-{i % models}"
            accuracy = round(rng.uniform(0.5, 0.99), 4)
            key = upload_model(sandbox, name, f"v{i}", accuracy)
            accuracies.setdefault(name, {})[key] = accuracy
            time.sleep(outage_seconds / 2 / uploads)
        time.sleep(max(0.0, outage_seconds - (time.monotonic() - down_at)))
        sandbox.start_mlflow()
        restarted_at = time.monotonic()
        sandbox.wait_until_quiet(timeout=600, stable_for=1.0)
        result.seconds = round(time.monotonic() - started, 1)
        versions = versions_by_model(sandbox)
        origins = [v["tags"].get(origin_tag("key")) for vs in versions.values() for v in vs]
        retried = [line for line in sandbox.worker_log_lines() if line.get("message") == "failed: will be retried"]
        result.observed = {
            "outage_seconds": round(restarted_at - down_at, 1),
            "recovered_after_restart_seconds": round(time.monotonic() - restarted_at, 1),
            "retries_logged": len(retried),
            "versions": len(origins),
            "distinct_sources": len(set(origins)),
            **champions_right(sandbox, accuracies),
            "dead_letters": dead_letters(sandbox),
        }
        result.ok = (
            len(origins) == uploads == len(set(origins))
            and not result.observed["wrong_champions"]
            and result.observed["without_verdict"] == 0
            and not any(result.observed["dead_letters"].values())
        )
    return result


# --- 3. poison and redrive --------------------------------------------------------------------------------


def poison(max_receive_count: int = REGISTER.max_receive_count, letters: int = 3) -> Result:
    """MLflow down for longer than the register route retries: letters reach the DLQ; redrive after the fix."""
    from ops.redrive import RouteQueues, redrive

    routes = [dataclasses.replace(r, max_receive_count=max_receive_count) if r is REGISTER else r for r in ROUTES]
    result = Result("poison", f"{letters} uploads fail {max_receive_count} times (MLflow down), then redrive")
    with fresh_sandbox(routes=routes) as sandbox:
        started = time.monotonic()
        # GIVEN uploads whose every attempt fails, because the registry is down
        sandbox.stop_mlflow()
        keys = [upload_model(sandbox, "poison", f"v{i}", 0.5) for i in range(letters)]
        deadline = time.monotonic() + 60 + 2 ** (max_receive_count + 1)
        while dlq_depth(sandbox, "register") < letters and time.monotonic() < deadline:
            time.sleep(0.5)
        in_dlq = sandbox.dlq_messages("register")
        reasons = {
            letter.message_id: [
                line.get("reason")
                for line in sandbox.worker_log_lines(["register"])
                if line.get("message_id") == letter.message_id and line.get("reason")
            ]
            for letter in in_dlq
        }
        dead_lettered_after = round(time.monotonic() - started, 1)
        # WHEN the cause is fixed and the letters are redriven
        sandbox.start_mlflow()
        wiring = sandbox.wiring["register"]
        queues = RouteQueues("register", wiring.queue_url, wiring.dead_letter_queue_url)
        moved = redrive(sandbox.client("sqs"), queues, report=lambda line: None)
        sandbox.wait_until_quiet(timeout=120)
        result.seconds = round(time.monotonic() - started, 1)
        origins = [v["tags"].get(origin_tag("key")) for v in versions_by_model(sandbox).get("poison", [])]
        result.observed = {
            "dead_lettered": len(in_dlq),
            "logged_reasons": sorted({r for rs in reasons.values() for r in rs}),
            "every_letter_has_a_logged_reason": all(reasons.values()) and bool(reasons),
            "dead_lettered_after_seconds": dead_lettered_after,
            "redriven": moved.moved,
            "registered_after_redrive": len(origins),
            "dead_letters_after": dead_letters(sandbox),
        }
        result.ok = (
            len(in_dlq) == letters
            and result.observed["every_letter_has_a_logged_reason"]
            and moved.moved == letters
            and sorted(origins) == sorted(keys)
            and not any(result.observed["dead_letters_after"].values())
        )
    return result


# --- 4. concurrency ---------------------------------------------------------------------------------------


def concurrency(versions: int = 20, register_workers: int = 5, validate_workers: int = 5) -> Result:
    result = Result("concurrency", f"{versions} versions of one model validated at once")
    workers = {"register": register_workers, "validate": validate_workers}
    with fresh_sandbox(worker_counts=workers) as sandbox:
        rng = random.Random(5)  # nosec B311: a seeded shuffle for a test, not security
        accuracies: dict[str, dict[str, float]] = {"race": {}}
        for i in range(versions):
            accuracy = round(rng.uniform(0.5, 0.99), 4)
            accuracies["race"][upload_model(sandbox, "race", f"v{i}", accuracy, notify=False)] = accuracy
        started = time.monotonic()
        put_events(sandbox, [s3_event(sandbox, key) for key in accuracies["race"]])
        sandbox.wait_until_quiet(timeout=300)
        result.seconds = round(time.monotonic() - started, 1)
        result.observed = {**champions_right(sandbox, accuracies), "dead_letters": dead_letters(sandbox)}
        result.ok = not result.observed["wrong_champions"] and result.observed["without_verdict"] == 0
    return result


# --- 6. burst ---------------------------------------------------------------------------------------------


def burst(
    uploads: int = 500, within_seconds: float = 60.0, register_workers: int = 5, validate_workers: int = 2
) -> Result:
    cap = register_workers + validate_workers + 1  # the aliases route is FIFO: one worker
    result = Result(
        "burst",
        f"{uploads} uploads in {within_seconds:.0f} s; workers register {register_workers}, "
        f"validate {validate_workers}, aliases 1 (cap {cap} concurrent MLflow requests)",
    )
    mlflow_port = free_port()
    proxy = CountingProxy(mlflow_port).start()
    try:
        options = {"worker_counts": {"register": register_workers, "validate": validate_workers}}
        with fresh_sandbox(mlflow_port=mlflow_port, functions_tracking_uri=proxy.url, **options) as sandbox:
            started = time.monotonic()
            for i in range(uploads):
                upload_model(sandbox, f"burst-{i % 20}", f"v{i}", 0.5 + (i % 97) / 200)
                pause = started + (i + 1) * within_seconds / uploads - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            uploaded_in = time.monotonic() - started
            sandbox.wait_until_quiet(timeout=1800, stable_for=1.0)
            result.seconds = round(time.monotonic() - started, 1)
            versions = versions_by_model(sandbox)
            origins = [v["tags"].get(origin_tag("key")) for vs in versions.values() for v in vs]
            validated = sum(1 for vs in versions.values() for v in vs if v["tags"].get(TAG_STATUS))
            result.observed = {
                "uploaded_in_seconds": round(uploaded_in, 1),
                "versions": len(origins),
                "distinct_sources": len(set(origins)),
                "validated": validated,
                "mlflow_requests": proxy.requests,
                "peak_concurrent_mlflow_requests": proxy.peak,
                "cap": cap,
                "dead_letters": dead_letters(sandbox),
            }
            result.ok = (
                len(origins) == uploads == len(set(origins)) == validated
                and proxy.peak <= cap
                and not any(result.observed["dead_letters"].values())
            )
    finally:
        proxy.stop()
    return result


# --- 7. crash ---------------------------------------------------------------------------------------------

KILLED_ROUTES = ("register", "validate", "aliases")


def in_progress_records(sandbox: Sandbox) -> int:
    """Idempotency records still `INPROGRESS` (left by an invocation that did not finish)."""
    pages = (
        sandbox.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=sandbox.idempotency_table,
            FilterExpression="#status = :in_progress",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":in_progress": {"S": "INPROGRESS"}},
        )
    )
    return sum(page["Count"] for page in pages)


def verdict_check(sandbox: Sandbox) -> dict[str, Any]:
    """Verdicts per version (from the `Model Version Validated` events) and alias moves per verdict (histories)."""
    statuses: dict[tuple[str, str], set[str]] = {}
    for event in sandbox.observed_events("Model Version Validated"):
        detail = event.get("detail") or {}
        statuses.setdefault((detail.get("model_name"), str(detail.get("version"))), set()).add(detail.get("status"))
    moved_twice = []
    for model in sandbox.registry_state():
        for alias in ("champion", "challenger"):
            verdicts = [e.verdict for e in parse_history(model["tags"].get(history_tag(alias))) if e.verdict]
            moved_twice += [f"{model['name']}@{alias} by {v}" for v in sorted(set(verdicts)) if verdicts.count(v) > 1]
    return {
        "validated_events": sum(1 for _ in sandbox.observed_events("Model Version Validated")),
        "versions_with_conflicting_verdicts": sorted(f"{m} v{v}" for (m, v), s in statuses.items() if len(s) > 1),
        "alias_moved_twice": moved_twice,
    }


def crash(
    uploads: int = 40,
    models: int = 5,
    kills_per_route: int = 3,
    upload_seconds: float = 30.0,
    visibility_timeout_seconds: int = 120,
) -> Result:
    """SIGKILL the register, validate and aliases workers while uploads are in flight: each is replaced."""
    result = Result(
        "crash",
        f"register, validate and aliases workers SIGKILLed {kills_per_route} times each, mid-batch, while {uploads} "
        f"models ({models} names) upload over {upload_seconds:.0f} s; visibility timeout {visibility_timeout_seconds} s",
    )
    with fresh_sandbox(visibility_timeout_seconds=visibility_timeout_seconds) as sandbox:
        rng = random.Random(13)  # nosec B311: seeded test data, not security
        accuracies: dict[str, dict[str, float]] = {}
        started = time.monotonic()

        def upload_all() -> None:
            for i in range(uploads):
                name = f"crash-{i % models}"
                accuracy = round(rng.uniform(0.5, 0.99), 4)
                accuracies.setdefault(name, {})[upload_model(sandbox, name, f"v{i}", accuracy)] = accuracy
                time.sleep(max(0.0, started + (i + 1) * upload_seconds / uploads - time.monotonic()))

        uploader = threading.Thread(target=upload_all, name="crash-uploads")
        uploader.start()
        kills: list[dict[str, Any]] = []
        try:
            # WHEN each route's worker is killed while it holds a batch, round after round
            for _ in range(kills_per_route):
                for route in KILLED_ROUTES:
                    kill = kill_when_busy(sandbox, route, timeout=upload_seconds + visibility_timeout_seconds)
                    if kill:
                        kills.append(kill)
        finally:
            uploader.join()
        uploaded_at = time.monotonic()
        sandbox.wait_until_quiet(timeout=max(600, 6 * visibility_timeout_seconds), stable_for=1.0)
        result.seconds = round(time.monotonic() - started, 1)
        origins = [v["tags"].get(origin_tag("key")) for vs in versions_by_model(sandbox).values() for v in vs]
        replacements = sandbox.worker_replacements
        result.observed = {
            "kills": {route: sum(1 for k in kills if k["route"] == route) for route in KILLED_ROUTES},
            "in_progress_records_left_by_register_kills": sum(k["in_progress_after"] for k in kills),
            "retries_on_an_in_progress_record": sum(
                1 for line in sandbox.worker_log_lines(["register"]) if line.get("reason") == "attempt_in_progress"
            ),
            "aliases_group_held_after_a_kill_seconds": group_held_after_kills(sandbox, kills),
            "replacements": len(replacements),
            "replacements_ended": sorted({r.ended for r in replacements}),
            "quiet_after_last_upload_seconds": round(time.monotonic() - uploaded_at, 1),
            "versions": len(origins),
            "distinct_sources": len(set(origins)),
            **champions_right(sandbox, accuracies),
            **verdict_check(sandbox),
            "in_progress_records_at_end": in_progress_records(sandbox),
            "dead_letters": dead_letters(sandbox),
        }
        observed = result.observed
        result.ok = (
            all(count == kills_per_route for count in observed["kills"].values())
            and len(replacements) == len(kills)
            and observed["replacements_ended"] == ["killed by SIGKILL"]
            and len(origins) == uploads == len(set(origins))
            and observed["without_verdict"] == 0
            and not observed["versions_with_conflicting_verdicts"]
            and not observed["wrong_champions"]
            and not observed["alias_moved_twice"]
            and observed["in_progress_records_at_end"] == 0
            and not any(observed["dead_letters"].values())
        )
    return result


def group_held_after_kills(sandbox: Sandbox, kills: list[dict[str, Any]]) -> list[float]:
    """For each kill of the FIFO aliases worker: how long until that route invoked its function again (the killed
    batch's message holds the message group, so nothing of the group is delivered until its visibility ends)."""
    invocations = sorted(
        _log_time(line) for line in sandbox.worker_log_lines(["aliases"]) if line.get("message") == "invoking handler"
    )
    held = []
    for kill in (k for k in kills if k["route"] == "aliases"):
        later = [at for at in invocations if at > kill["at"]]
        if later:
            held.append(round(later[0] - kill["at"], 1))
    return held


def kill_when_busy(sandbox: Sandbox, route: str, *, timeout: float) -> dict[str, Any] | None:
    """SIGKILL `route`'s worker as soon as it holds a batch (the register worker: once it is inside a registration,
    its idempotency record `INPROGRESS`); wait until the sandbox has replaced it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = sandbox.worker_status(route) or {}
        if status.get("state") == "busy" and (route != "register" or in_progress_records(sandbox)):
            replaced = len(sandbox.worker_replacements)
            try:
                os.kill(int(status["pid"]), signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed_at = time.time()
            in_progress = in_progress_records(sandbox) if route == "register" else 0
            while len(sandbox.worker_replacements) == replaced and time.monotonic() < deadline:
                time.sleep(0.05)
            sandbox.wait_for_worker(route, sandbox._workers[route], deadline=time.monotonic() + 60)
            return {
                "route": route,
                "pid": status["pid"],
                "at": killed_at,
                "in_progress_after": in_progress,
            }
        time.sleep(0.01)
    return None


# --- 8. hang ----------------------------------------------------------------------------------------------


def hang(
    uploads: int = 20,
    models: int = 4,
    hang_seconds: float = 40.0,
    dead_letter_uploads: int = 10,
    dead_letter_max_receive_count: int = REGISTER.max_receive_count,
) -> Result:
    """MLflow frozen (accepts, never answers) while models upload, then thawed; and, apart, frozen until the DLQ."""
    result = Result(
        "hang",
        f"MLflow frozen (SIGSTOP: accepts, never answers) {hang_seconds:.0f} s while {uploads} models upload, then "
        f"resumed; apart, {dead_letter_uploads} uploads against a frozen MLflow until the register DLQ "
        f"(maxReceiveCount {dead_letter_max_receive_count})",
    )
    with fresh_sandbox() as sandbox:
        rng = random.Random(17)  # nosec B311: seeded test data, not security
        accuracies: dict[str, dict[str, float]] = {}
        started = time.monotonic()
        # GIVEN an MLflow server that accepts connections and never answers
        sandbox.pause_mlflow()
        try:
            # WHEN models upload during the hang (over its first half)
            for i in range(uploads):
                name = f"hang-{i % models}"
                accuracy = round(rng.uniform(0.5, 0.99), 4)
                accuracies.setdefault(name, {})[upload_model(sandbox, name, f"v{i}", accuracy)] = accuracy
                time.sleep(hang_seconds / 2 / uploads)
            time.sleep(max(0.0, hang_seconds - (time.monotonic() - started)))
        finally:
            sandbox.resume_mlflow()
        resumed_at = time.monotonic()
        sandbox.wait_until_quiet(timeout=900, stable_for=1.0)
        result.seconds = round(time.monotonic() - started, 1)
        origins = [v["tags"].get(origin_tag("key")) for vs in versions_by_model(sandbox).values() for v in vs]
        attempts = hung_attempts(sandbox)
        result.observed = {
            "hang_seconds": round(resumed_at - started, 1),
            **attempts,
            "quiet_after_resume_seconds": round(time.monotonic() - resumed_at, 1),
            "versions": len(origins),
            "distinct_sources": len(set(origins)),
            **champions_right(sandbox, accuracies),
            **verdict_check(sandbox),
            "worker_replacements": len(sandbox.worker_replacements),
            "dead_letters": dead_letters(sandbox),
        }
    observed = result.observed
    if dead_letter_uploads:
        observed.update(hung_until_dead_lettered(dead_letter_uploads, dead_letter_max_receive_count))
    result.ok = (
        observed["retries_logged"] > 0
        and observed["timed_out_batches"] == 0
        and observed["worker_replacements"] == 0
        and len(origins) == uploads == len(set(origins))
        and observed["without_verdict"] == 0
        and not observed["versions_with_conflicting_verdicts"]
        and not observed["wrong_champions"]
        and not observed["alias_moved_twice"]
        and not any(observed["dead_letters"].values())
        and observed.get("dead_lettered", dead_letter_uploads) == dead_letter_uploads
    )
    return result


def hung_attempts(sandbox: Sandbox, routes: tuple[str, ...] = ("register", "validate")) -> dict[str, Any]:
    """From the workers' logs: how long a record waited on the hung MLflow before it was handed back for a retry
    (from its batch's start), how long batches took, and whether any ran into the function timeout."""
    lines = sandbox.worker_log_lines(routes)
    invoked = {
        line.get("aws_request_id"): _log_time(line) for line in lines if line.get("message") == "invoking handler"
    }
    to_retry = [
        _log_time(line) - invoked[line["function_request_id"]]
        for line in lines
        if line.get("message") == "failed: will be retried"
        and line.get("reason") == "registry_unavailable"
        and line.get("function_request_id") in invoked
    ]
    batches = [line for line in lines if line.get("message") == "batch done"]
    failed_batches = [line["duration_ms"] / 1000 for line in batches if line.get("failed")]
    return {
        "retries_logged": len(to_retry),
        "first_record_retried_after_seconds": round(min(to_retry), 1) if to_retry else None,
        "longest_wait_for_a_retry_seconds": round(max(to_retry), 1) if to_retry else None,
        "longest_failed_batch_seconds": round(max(failed_batches), 1) if failed_batches else None,
        "function_timeout_seconds": REGISTER.timeout_seconds,
        "timed_out_batches": sum(1 for line in batches if "timed out" in str(line.get("error") or "")),
    }


def hung_until_dead_lettered(uploads: int, max_receive_count: int = REGISTER.max_receive_count) -> dict[str, Any]:
    """A fresh sandbox whose MLflow stays frozen: how long until the uploads are in the register DLQ."""
    routes = [dataclasses.replace(r, max_receive_count=max_receive_count) if r is REGISTER else r for r in ROUTES]
    with fresh_sandbox(routes=routes) as sandbox:
        sandbox.pause_mlflow()
        try:
            started = time.monotonic()
            for i in range(uploads):
                upload_model(sandbox, "hang-dlq", f"v{i}", 0.5)
            deadline = time.monotonic() + 120 + max_receive_count * REGISTER.timeout_seconds
            deadline += sum(retry_delay(count) for count in range(1, max_receive_count))
            while dlq_depth(sandbox, "register") < uploads and time.monotonic() < deadline:
                time.sleep(0.5)
            dead_lettered_after = time.monotonic() - started
            letters = sandbox.dlq_messages("register")
            attempts = hung_attempts(sandbox, ("register",))
        finally:
            sandbox.resume_mlflow()
    return {
        "dead_letter_max_receive_count": max_receive_count,
        "dead_lettered": len(letters),
        "dead_lettered_after_seconds": round(dead_lettered_after, 1),
        "backoff_seconds_before_the_dlq": sum(retry_delay(count) for count in range(1, max_receive_count)),
        "dead_letter_phase_longest_failed_batch_seconds": attempts["longest_failed_batch_seconds"],
    }


def _log_time(line: dict) -> float:
    """A log line's timestamp (the worker's ISO form or Powertools' `2026-01-01 10:00:00,123+0000`) in seconds."""
    text = str(line.get("timestamp", "")).replace(",", ".")
    return datetime.fromisoformat(text).timestamp()


SCENARIOS: dict[str, Callable[..., Result]] = {
    "duplicates": duplicates,
    "outage": outage,
    "poison": poison,
    "concurrency": concurrency,
    "burst": burst,
    "crash": crash,
    "hang": hang,
}
