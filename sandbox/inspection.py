"""Inspecting what the sandbox's pipeline did: observed events, dead letters, queue depths, worker logs, the registry.

`wait_until_quiet` is how a caller knows the pipeline has settled: every route queue empty and every worker idle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from functions.models.dead_letters import DeadLetter
from sandbox.processes import ChildProcess, tail
from sandbox.provisioning import RouteWiring

_QUIET_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class Inspection:
    """Reads of the sandbox's state, for tools and tests."""

    mlflow_tracking_uri: str
    wiring: dict[str, RouteWiring]
    observer_queue_url: str | None
    _observed: list[dict]
    _observer_lock: Any
    _replicas: dict[str, ChildProcess]

    # Provided by the sandbox: its AWS clients, paths, and the supervision of its workers.
    client: Callable[[str], Any]
    log_path: Callable[[str], Path]
    worker_status: Callable[[str], dict | None]
    _check_workers_alive: Callable[[], None]

    # --- events ----------------------------------------------------------------------------------------

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

    # --- queues ----------------------------------------------------------------------------------------

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
        return [DeadLetter.from_message(message, route=route) for message in received]

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

    # --- logs ------------------------------------------------------------------------------------------

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
