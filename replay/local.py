"""Replaying recorded events in a sandbox (`python -m replay local`): each event put on the bus it belongs on,
rewritten for the sandbox's bucket, then what happened to it told from the sandbox's evidence (`replay.report`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from botocore.exceptions import ClientError

from functions.routing import Bus
from replay.recordings import (
    RecordedEvent,
    align_with_object,
    is_s3_event,
    object_key,
    put_events_entry,
    recorded_bucket,
    rewrite_bucket,
    target_bus,
)
from replay.report import Injection, Outcome, correlate
from sandbox import Sandbox, SandboxError
from sandbox.context import SandboxSettings


def new_sandbox(
    settings: SandboxSettings | None, overrides: dict[str, str], *, progress: Callable[[str], None]
) -> Sandbox:
    """A sandbox with a deployment's settings (`--context`), then the command line's (`--policies`) on top."""
    if settings is None:
        return Sandbox(function_settings=overrides, progress=progress)
    return Sandbox(
        artifact_root_prefix=settings.artifact_root_prefix,
        function_settings={**settings.function_settings, **overrides},
        progress=progress,
    )


def attached(value: str) -> Sandbox:
    """A running sandbox, from its `--json` line or a file holding it (the last line)."""
    text = value.strip()
    if not text.startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise SandboxError(f"--attach {value!r} is neither a JSON sandbox description nor a file holding one")
        text = path.read_text().strip().splitlines()[-1]
    sandbox = Sandbox.attach(text)
    sandbox.check_running()
    return sandbox


def replay_files(
    sandbox: Sandbox,
    recorded: Sequence[RecordedEvent],
    *,
    keep_buckets: Iterable[str] = (),
    timeout: float,
    progress: Callable[[str], None],
) -> tuple[list[Outcome], bool]:
    """Inject the events one file at a time and correlate what happened; also whether the pipeline settled each time.

    The events of a file go in together (a duplicate delivery stays concurrent), and the pipeline settles before the
    next file, so a recorded sequence (upload, then promotion) keeps its order.
    """
    keep = list(keep_buckets)
    injections, quiet = [], True
    for _, items in itertools.groupby(recorded, key=lambda item: item.file):
        injections += [inject(sandbox, item, keep_buckets=keep) for item in items]
        try:
            sandbox.wait_until_quiet(timeout=timeout)
        except TimeoutError as error:
            progress(f"warning: {error}")
            quiet = False
    progress(f"injected {len(injections)} events, one file at a time")
    outcomes = correlate(
        injections,
        observed=sandbox.drain_observer(),
        dead_letters=[letter for name in sorted(sandbox.wiring) for letter in sandbox.dlq_messages(name)],
        log_lines=sandbox.worker_log_lines(),
    )
    return outcomes, quiet


def inject(sandbox: Sandbox, item: RecordedEvent, *, keep_buckets: Iterable[str] = ()) -> Injection:
    """Put one recorded event on the bus it belongs on, rewritten for this sandbox's bucket (unless kept)."""
    recorded = recorded_bucket(item.event)
    rewrite = recorded is not None and recorded not in set(keep_buckets)
    event = rewrite_bucket(item.event, sandbox.bucket) if rewrite else dict(item.event)
    key = object_key(event)
    if is_s3_event(event) and key:
        head = head_object(sandbox, key)
        if head is not None:
            event = align_with_object(
                event, version_id=head.get("VersionId"), etag=head["ETag"], size=int(head["ContentLength"])
            )
    bus = target_bus(event)
    bus_name = "default" if bus is Bus.DEFAULT else sandbox.event_bus
    response = sandbox.client("events").put_events(Entries=[put_events_entry(event, event_bus_name=bus_name)])
    entry = response["Entries"][0]
    if "EventId" not in entry:
        raise SandboxError(
            f"{item.label}: PutEvents refused the event: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
        )
    detail = event.get("detail") or {}
    return Injection(
        label=item.label,
        source=str(event["source"]),
        detail_type=str(event["detail-type"]),
        bus=bus.value,
        event_id=entry["EventId"],
        key=key,
        bucket=recorded_bucket(event),
        correlation_id=detail.get("correlation_id") if bus is Bus.PROJECT else None,
    )


def head_object(sandbox: Sandbox, key: str) -> dict | None:
    """The sandbox bucket's object at `key` (its version, ETag and size), or None when there is none."""
    try:
        return sandbox.client("s3").head_object(Bucket=sandbox.bucket, Key=key)
    except ClientError:
        return None
