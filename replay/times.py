"""Points in time and durations as people type them on the command line (`--from 2h`, `--since 1d`, ISO 8601)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(?P<amount>\d+)\s*(?P<unit>s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `7d`, `1w` -> a positive timedelta; ValueError otherwise."""
    match = _DURATION.fullmatch(text)
    if not match or int(match["amount"]) == 0:
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h or 7d")
    return timedelta(**{_UNITS[match["unit"]]: int(match["amount"])})


def parse_time(text: str, *, now: datetime) -> datetime:
    """`now`, a duration ago (`2h`), or an ISO 8601 time (`2026-11-20T10:00:00Z`; without an offset it is UTC)."""
    value = text.strip()
    if value.lower() == "now":
        return now
    if _DURATION.fullmatch(value):
        return now - parse_duration(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither 'now', a duration ago such as 2h, nor an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """`2026-11-20T10:00:00Z` (UTC, seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
