"""Pure parts of the reliability harness and the sandbox's worker counts (no sandbox started)."""

from __future__ import annotations

import pytest

from reliability.hostile import CASES
from sandbox import Sandbox, SandboxError


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


def test_the_functions_may_reach_aws_elsewhere_while_the_event_source_polls_moto() -> None:
    # GIVEN a sandbox whose route functions call AWS through a proxy
    from functions.routing import REGISTER
    from sandbox.worker import EVENT_SOURCE_ENDPOINT_VARIABLE

    sandbox = Sandbox(functions_aws_endpoint_url="http://127.0.0.1:9999")
    sandbox.aws_port = 5005
    sandbox.mlflow_port = 5006
    # WHEN a worker's environment is built
    env = sandbox.worker_environment(REGISTER, queue_url="http://q", dead_letter_queue_url="http://dlq")
    # THEN the handler's clients use the proxy, and the worker's poller moto itself
    assert env["AWS_ENDPOINT_URL"] == env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:9999"
    assert env[EVENT_SOURCE_ENDPOINT_VARIABLE] == "http://127.0.0.1:5005"
    # AND without the option both are moto
    plain = Sandbox()
    plain.aws_port, plain.mlflow_port = 5005, 5006
    env = plain.worker_environment(REGISTER, queue_url="http://q", dead_letter_queue_url="http://dlq")
    assert env["AWS_ENDPOINT_URL"] == env[EVENT_SOURCE_ENDPOINT_VARIABLE] == "http://127.0.0.1:5005"


def test_the_aws_scenarios_are_known_and_have_quick_sizes() -> None:
    from reliability.__main__ import ALL, QUICK

    assert {"aws-faults", "emulator-outage"} <= set(ALL) & set(QUICK)
