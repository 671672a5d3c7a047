"""Replaying a time window of a deployed stack's archive into the bus it came from (`python -m replay archive`).

The stack keeps two archives (`stacks/constructs/event_buses.py`): `artifacts`, the bucket's S3 events on the
default bus (replaying it re-runs registration), and `project`, every project event on the project bus. A replay
sends the archived events of the window again, each with a top-level `replay-name`, to every rule of the bus, or
only to the rules given with `--rule` (EventBridge's `FilterArns`). The functions log that name and tag what they
register from a replayed event (`origin.replay_name`). EventBridge replays in one-minute slices, not in the
original order, and reports how far it got (`EventLastReplayedTime`), which `wait` turns into progress lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from functions.routing import ROUTES, Bus
from replay.aws_stack import AwsProblem, DeployedStack, calling, error_code
from replay.times import iso
from stacks import outputs

ARCHIVES = {"artifacts": outputs.ARTIFACT_EVENTS_ARCHIVE_NAME, "project": outputs.PROJECT_EVENTS_ARCHIVE_NAME}
"""`--archive` choices -> the stack output naming the archive."""
TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
MAX_REPLAY_NAME = 64


class ReplayTimedOut(Exception):
    """The replay was still running when `wait` gave up; it goes on in EventBridge."""

    def __init__(self, description: Mapping[str, Any]) -> None:
        super().__init__(f"replay {description.get('ReplayName')} is still {description.get('State')}")
        self.description = description


@dataclass(frozen=True)
class Archive:
    name: str
    arn: str
    bus_arn: str
    retention_days: int
    """0: kept forever (EventBridge's meaning)."""
    state: str

    @property
    def bus_name(self) -> str:
        return self.bus_arn.rsplit("/", 1)[-1]


def find_archive(stack: DeployedStack, kind: str) -> Archive:
    """The stack's `artifacts` or `project` archive, as EventBridge describes it."""
    name = stack.output(ARCHIVES[kind])
    with calling(f"describe archive {name!r}"):
        found = stack.client("events").describe_archive(ArchiveName=name)
    return Archive(
        name=found["ArchiveName"],
        arn=found["ArchiveArn"],
        bus_arn=found["EventSourceArn"],
        retention_days=int(found.get("RetentionDays") or 0),
        state=str(found.get("State", "")),
    )


def check_window(archive: Archive, start: datetime, end: datetime, *, now: datetime) -> None:
    """Refuse a window EventBridge cannot replay, before asking it: `AwsProblem` saying why."""
    if end <= start:
        raise AwsProblem(f"--to ({iso(end)}) must be after --from ({iso(start)})")
    if start > now:
        raise AwsProblem(f"--from ({iso(start)}) is in the future: nothing has been archived yet")
    if archive.retention_days:
        oldest = now - timedelta(days=archive.retention_days)
        if start < oldest:
            raise AwsProblem(
                f"--from ({iso(start)}) is older than archive {archive.name} keeps events: it retains them "
                f"{archive.retention_days} days (archiveRetentionDays), so the oldest it can replay are from about "
                f"{iso(oldest)}"
            )


def rule_arns(stack: DeployedStack, archive: Archive, rules: Sequence[str]) -> list[str]:
    """`--rule` values (a route name, a rule name on the archive's bus, or a rule ARN) -> rule ARNs on that bus."""
    routes = {route.name: route for route in ROUTES}
    arns: list[str] = []
    for rule in rules:
        if rule in routes:
            route = routes[rule]
            route_bus = "default" if route.bus is Bus.DEFAULT else stack.output(outputs.EVENT_BUS_NAME)
            if route_bus != archive.bus_name:
                raise AwsProblem(
                    f"route {rule!r} listens on bus {route_bus!r}, but archive {archive.name} replays into "
                    f"{archive.bus_name!r}; choose the archive of that bus (--archive)"
                )
            arns.append(stack.output(outputs.rule_arn(rule)))
        elif rule.startswith("arn:"):
            if _bus_of_rule_arn(rule) != archive.bus_name:
                raise AwsProblem(
                    f"rule {rule} is not on bus {archive.bus_name!r}, where archive {archive.name} replays"
                )
            arns.append(rule)
        else:
            try:
                with calling(f"find rule {rule!r} on bus {archive.bus_name!r}"):
                    found = stack.client("events").describe_rule(Name=rule, EventBusName=archive.bus_name)
            except AwsProblem as problem:
                if error_code(problem) == "ResourceNotFoundException":
                    known = ", ".join(sorted(routes))
                    raise AwsProblem(
                        f"there is no rule {rule!r} on bus {archive.bus_name!r}: give a route name ({known}), or the "
                        "name or ARN of a rule on that bus"
                    ) from None
                raise
            arns.append(found["Arn"])
    return arns


def _bus_of_rule_arn(arn: str) -> str:
    # arn:aws:events:<region>:<account>:rule/<name> (default bus) or .../rule/<bus>/<name>
    path = arn.split(":", 5)[-1].split("/")
    return path[1] if len(path) == 3 else "default"


def replay_name(stack_name: str, kind: str, now: datetime) -> str:
    """A name EventBridge accepts (64 characters of `[.-_A-Za-z0-9]`) that says what and when."""
    return f"{stack_name}-{kind}-{now.strftime('%Y%m%dT%H%M%SZ')}"[-MAX_REPLAY_NAME:].lstrip("-.")


def start_replay(
    stack: DeployedStack, archive: Archive, *, name: str, start: datetime, end: datetime, rule_arns: Sequence[str]
) -> None:
    """Start replaying the window into the archive's own bus (only to `rule_arns` when given)."""
    destination: dict[str, Any] = {"Arn": archive.bus_arn}
    if rule_arns:
        destination["FilterArns"] = list(rule_arns)
    with calling(f"start replay {name!r} of archive {archive.name}"):
        stack.client("events").start_replay(
            ReplayName=name,
            Description=f"python -m replay archive --stack {stack.name} ({iso(start)} .. {iso(end)})",
            EventSourceArn=archive.arn,
            EventStartTime=start,
            EventEndTime=end,
            Destination=destination,
        )


def wait(
    describe: Callable[[], Mapping[str, Any]],
    *,
    progress: Callable[[str], None],
    poll_seconds: float = 5.0,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Mapping[str, Any]:
    """Poll `describe()` (DescribeReplay) until the replay ends; report each change of progress. Returns the end
    state; raises `ReplayTimedOut` when `timeout` seconds pass first (the replay goes on in EventBridge)."""
    deadline = None if timeout is None else clock() + timeout
    last = None
    while True:
        description = describe()
        message = describe_progress(description)
        if message != last:
            progress(message)
            last = message
        if description.get("State") in TERMINAL_STATES:
            return description
        if deadline is not None and clock() >= deadline:
            raise ReplayTimedOut(description)
        sleep(poll_seconds)


def describe_progress(description: Mapping[str, Any]) -> str:
    """`RUNNING: replayed events up to 10:42:00Z, 35% of the window` from a DescribeReplay answer."""
    state = str(description.get("State", "UNKNOWN"))
    start, end = description.get("EventStartTime"), description.get("EventEndTime")
    last = description.get("EventLastReplayedTime")
    text = f"replay {description.get('ReplayName')}: {state}"
    if isinstance(last, datetime):
        text += f", replayed events up to {iso(last)}"
        if isinstance(start, datetime) and isinstance(end, datetime) and end > start:
            share = max(0.0, min(1.0, (last - start) / (end - start)))
            text += f" ({share:.0%} of the window)"
    if description.get("StateReason"):
        text += f" - {description['StateReason']}"
    return text


def summary(description: Mapping[str, Any], *, archive: Archive, rules: Sequence[str]) -> str:
    """What the command prints when the replay has ended."""
    started, ended = description.get("ReplayStartTime"), description.get("ReplayEndTime")
    took = f"{(ended - started).total_seconds():.0f} s" if isinstance(started, datetime) and ended else "unknown"
    window_start, window_end = description.get("EventStartTime"), description.get("EventEndTime")
    window = (
        f"{iso(window_start)} .. {iso(window_end)}"
        if isinstance(window_start, datetime) and isinstance(window_end, datetime)
        else "unknown"
    )
    rows = [
        ("archive", f"{archive.name} (into bus {archive.bus_name})"),
        ("window", window),
        ("rules", ", ".join(rules) if rules else "every rule of the bus"),
        ("took", took),
    ]
    if description.get("StateReason"):
        rows.append(("reason", str(description["StateReason"])))
    lines = [f"replay {description.get('ReplayName')} {description.get('State')}"]
    lines += [f"  {label:<9}{text}" for label, text in rows]
    return "\n".join(lines)
