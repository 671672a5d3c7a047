"""The alarm runbook (`docs/alarms.md`) is generated from the alarm texts the stack uses (`stacks/alarms.py`)."""

from __future__ import annotations

import re

from stacks.alarms import ALARMS, RUNBOOK
from stacks.runbook import MINUTES, PLACEHOLDERS, render
from tests.infrastructure.conftest import REPO_ROOT


def test_the_committed_runbook_is_the_one_the_alarm_texts_render():
    # GIVEN the committed runbook
    committed = (REPO_ROOT / RUNBOOK).read_text()
    # WHEN the alarm texts are rendered again
    # THEN it is the same page (after editing stacks/alarms.py, run `make docs`)
    assert committed == render(), f"{RUNBOOK} is stale: run `make docs`"


def test_every_placeholder_of_the_alarm_texts_has_a_runbook_value():
    for kind, text in ALARMS.items():
        # GIVEN an alarm's texts
        # WHEN we read their placeholders
        names = set(re.findall(r"\{(\w+)\}", text.meaning + text.first_steps))
        # THEN the runbook knows what to show for each (minutes: from the alarm's own threshold)
        known = set(PLACEHOLDERS) | ({"minutes"} if kind in MINUTES else set())
        assert names <= known, (kind, names - known)
