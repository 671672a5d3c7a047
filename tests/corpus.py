"""The sample corpus in `events/` and the outcomes its README's table promises (shared by unit and integration)."""

from __future__ import annotations

import re

from sandbox import REPO_ROOT

EVENTS = REPO_ROOT / "events"
_ROW = re.compile(r"^\| `(?P<file>[^`]+\.json)` \| (?P<shows>.+) \| `(?P<outcome>[^`]+)` \|$")


def readme_rows() -> dict[str, str]:
    """File name -> the outcome the README's table promises for it."""
    rows = (_ROW.match(line) for line in (EVENTS / "README.md").read_text().splitlines())
    return {row["file"]: row["outcome"] for row in rows if row}
