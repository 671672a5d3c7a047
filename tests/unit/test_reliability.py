"""Pure parts of the reliability harness and the sandbox's worker counts (no sandbox started)."""

from __future__ import annotations

import pytest

from reliability.hostile import CASES
from replay.processes import SandboxError
from replay.sandbox import Sandbox


def test_a_fifo_route_cannot_get_a_second_worker() -> None:
    # GIVEN / WHEN / THEN: two workers on the FIFO aliases queue are refused before anything starts
    with pytest.raises(SandboxError, match=r"aliases \(FIFO: one worker\)"):
        Sandbox(worker_counts={"aliases": 2})


def test_worker_counts_name_known_routes_and_are_positive() -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(SandboxError, match="worker counts refused: nosuch"):
        Sandbox(worker_counts={"nosuch": 2})
    with pytest.raises(SandboxError, match="register=0"):
        Sandbox(worker_counts={"register": 0})


def test_a_standard_route_may_get_several_workers() -> None:
    # GIVEN / WHEN
    sandbox = Sandbox(worker_counts={"register": 5})
    # THEN
    assert sandbox.worker_counts == {"register": 5, "validate": 1, "aliases": 1}


def test_hostile_cases_are_at_least_thirty_and_uniquely_named() -> None:
    # GIVEN / WHEN
    names = [case.name for case in CASES]
    # THEN
    assert len(names) >= 30
    assert len(set(names)) == len(names)
