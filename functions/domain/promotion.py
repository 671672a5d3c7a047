"""Promotion rules, pure: which version should hold an alias, and the alias history.

`outranks` decides whether a candidate may take an alias from its holder. It is what makes the final
holder independent of the order verdicts arrive in: a better metric wins (by the policy's direction, and
by its minimum improvement for `auto` aliases); an equal metric goes to the higher version; a version
with no known metric never displaces one that has it; without a compared metric, the higher version wins.
(A non-zero minimum improvement is path-dependent by nature: 0.90 → 0.905 → 0.91 with a 0.01 minimum
keeps 0.90 or 0.905 depending on order. docs/policies-and-aliases.md says so.)

The history of an alias is a JSON list in a registered-model tag, newest last, capped to fit MLflow's
tag size: each entry records the new and previous version, the reason, who moved it, the correlation id,
the time, and the verdict it acted on (so one verdict never moves an alias twice).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

MAX_HISTORY_CHARS = 4500
AUTOPILOT = "autopilot"
ROLLED_BACK_BY = "rolled back by "
"""How the reason of a rollback's history entry starts (`rollback_reason`)."""


@dataclass(frozen=True)
class Standing:
    """A version and its compared metric (None when unknown or not finite)."""

    version: str
    metric: float | None = None


def outranks(
    candidate: Standing,
    holder: Standing | None,
    *,
    direction: str = "higher",
    min_improvement: float = 0.0,
    relative: bool = False,
) -> bool:
    """May `candidate` take the alias from `holder`? (Never from itself.)"""
    if holder is None:
        return True
    if candidate.version == holder.version:
        return False
    newer = _number(candidate.version) > _number(holder.version)
    mine, theirs = _finite(candidate.metric), _finite(holder.metric)
    if mine is None and theirs is None:
        return newer
    if mine is None:
        return False
    if theirs is None:
        return True
    gain = mine - theirs if direction == "higher" else theirs - mine
    if relative:
        gain = gain / abs(theirs) if theirs else math.copysign(math.inf, gain) if gain else 0.0
    if math.isclose(gain, 0.0, abs_tol=1e-12):
        return newer and min_improvement <= 0
    return gain > 0 and (gain >= min_improvement or math.isclose(gain, min_improvement, rel_tol=1e-9))


@dataclass(frozen=True)
class HistoryEntry:
    version: str
    previous: str | None
    reason: str
    actor: str
    correlation_id: str
    at: str
    verdict: str | None = None
    """`<version>@<validated_at>` of the verdict a move on a verdict acted on."""


def parse_history(value: str | None) -> list[HistoryEntry]:
    """The alias history from its tag; an unreadable tag reads as empty (it is rewritten on the next move)."""
    if not value:
        return []
    try:
        entries = json.loads(value)
        return [HistoryEntry(**entry) for entry in entries]
    except (ValueError, TypeError):
        return []


def append_history(history: list[HistoryEntry], entry: HistoryEntry) -> str:
    """The tag value with `entry` appended, oldest entries dropped to stay within MLflow's tag size."""
    entries = [*history, entry]
    while True:
        text = json.dumps([asdict(e) for e in entries], separators=(",", ":"))
        if len(text) <= MAX_HISTORY_CHARS or len(entries) == 1:
            return text
        entries = entries[1:]


def applied(history: list[HistoryEntry], verdict: str) -> bool:
    """Has this verdict already moved the alias (so a redelivery must not move it again)?"""
    return any(entry.verdict == verdict for entry in history)


def rollback_target(history: list[HistoryEntry], holder: str | None) -> str | None:
    """The version that held the alias before the current holder took it, from the history."""
    for entry in reversed(history):
        if entry.version == holder:
            return entry.previous
    return None


def rollback_reason(requested_by: str) -> str:
    return f"{ROLLED_BACK_BY}{requested_by}"


def is_rollback(entry: HistoryEntry) -> bool:
    return entry.reason.startswith(ROLLED_BACK_BY)


@dataclass(frozen=True)
class Tenure:
    """How long a version held an alias, from the alias history."""

    hours: float | None
    """Hours from its last taking the alias to its losing it (or now); None: the history shows no such move."""
    rollback: HistoryEntry | None = None
    """The rollback that moved the alias away from it, if one ever did."""


def tenure(history: list[HistoryEntry], version: str, now: datetime) -> Tenure:
    """The version's last tenure of the alias whose `history` this is, and any rollback away from it."""
    rollback = next((e for e in history if e.previous == version and is_rollback(e)), None)
    taken = [index for index, entry in enumerate(history) if entry.version == version]
    if not taken:
        return Tenure(None, rollback)
    start = _moment(history[taken[-1]].at)
    after = history[taken[-1] + 1 :]
    end = _moment(after[0].at) if after else now
    if start is None or end is None:
        return Tenure(None, rollback)
    return Tenure(max(0.0, (end - start).total_seconds() / 3600), rollback)


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _number(version: str) -> int:
    return int(version) if version.isdigit() else -1


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
