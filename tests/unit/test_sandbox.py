"""The sandbox's checks and descriptions that need no running servers."""

from __future__ import annotations

import json

import pytest

from functions.routing import REGISTER
from sandbox import Sandbox, format_table
from sandbox.command import describe
from sandbox.environment import _REQUIRED_MODULES, check_dependencies
from sandbox.processes import CrashLoopGuard, SandboxError, describe_exit

INFO = {
    "mlflow_tracking_uri": "http://127.0.0.1:5001",
    "aws_endpoint_url": "http://127.0.0.1:5002",
    "region": "us-east-1",
    "bucket": "registry-autopilot-artifacts",
    "artifact_root": "s3://registry-autopilot-artifacts/mlflow",
    "artifact_root_prefix": "mlflow",
    "event_bus": "registry-autopilot",
    "idempotency_table": "registry-autopilot-idempotency",
    "queues": {
        "register": {
            "queue_url": "http://127.0.0.1:5002/123456789012/registry-autopilot-register",
            "dead_letter_queue_url": "http://127.0.0.1:5002/123456789012/registry-autopilot-register-dlq",
        }
    },
    "observer_queue_url": "http://127.0.0.1:5002/123456789012/registry-autopilot-observer",
    "workdir": "/tmp/sandbox",
    "pids": {"moto": 10, "mlflow": 11, "workers": {"register": 12}},
}


def test_a_missing_dependency_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a module the sandbox needs that cannot be imported
    monkeypatch.setitem(_REQUIRED_MODULES, "no_such_module_for_the_sandbox", "no-such-package")

    # WHEN the dependencies are checked
    # THEN the error names the package and the command that installs it
    with pytest.raises(SandboxError, match=r"needs no-such-package.*pip install -r requirements-dev\.txt"):
        check_dependencies()


def test_the_same_port_for_both_servers_is_refused() -> None:
    # GIVEN one port asked for both servers
    sandbox = Sandbox(aws_port=5005, mlflow_port=5005)

    # WHEN it starts
    # THEN it refuses before starting anything
    with pytest.raises(SandboxError, match="--aws-port and --mlflow-port must differ"):
        sandbox.start()


def test_a_handler_override_must_name_a_route() -> None:
    # GIVEN a handler for a route that does not exist
    # WHEN the sandbox is configured
    # THEN it says which
    with pytest.raises(SandboxError, match="handlers given for unknown routes: nope"):
        Sandbox(handlers={"nope": "tests.integration.fake_handlers.succeed"})


def test_attach_reads_the_json_line_of_a_running_sandbox() -> None:
    # GIVEN the JSON line `replay sandbox --json` printed
    line = json.dumps(INFO)

    # WHEN a client attaches to it
    sandbox = Sandbox.attach(line)

    # THEN it knows the endpoints and the route wiring, and stopping it stops nothing
    assert sandbox.aws_endpoint_url == INFO["aws_endpoint_url"]
    assert sandbox.mlflow_tracking_uri == INFO["mlflow_tracking_uri"]
    assert sandbox.queue_urls == {REGISTER.name: INFO["queues"]["register"]["queue_url"]}
    assert sandbox.info()["workdir"] == INFO["workdir"]
    sandbox.stop()


def test_attach_knows_a_fifo_routes_queues() -> None:
    # GIVEN the JSON line of a sandbox that wired the FIFO aliases route
    fifo_queues = {
        "queue_url": "http://127.0.0.1:5002/123456789012/registry-autopilot-aliases.fifo",
        "dead_letter_queue_url": "http://127.0.0.1:5002/123456789012/registry-autopilot-aliases-dlq.fifo",
    }
    info = {**INFO, "queues": {**INFO["queues"], "aliases": fifo_queues}}

    # WHEN a client attaches to it
    sandbox = Sandbox.attach(json.dumps(info))

    # THEN the aliases wiring is FIFO, the register wiring is not, and info() gives the same queues back
    assert sandbox.wiring["aliases"].fifo
    assert sandbox.wiring["aliases"].route.fifo_group
    assert not sandbox.wiring["register"].fifo
    assert sandbox.info()["queues"]["aliases"] == fifo_queues
    sandbox.stop()


def test_attach_refuses_what_is_no_sandbox_description() -> None:
    # GIVEN JSON that does not describe a sandbox
    # WHEN a client attaches to it
    # THEN the error says what was expected
    with pytest.raises(SandboxError, match="not a sandbox description"):
        Sandbox.attach('{"bucket": "b"}')


def test_the_friendly_description_lists_what_to_export() -> None:
    # GIVEN a sandbox
    sandbox = Sandbox.attach(INFO)

    # WHEN it is described for people
    text = describe(sandbox)

    # THEN it has the exports and an example that writes under the artifact root
    for line in (
        "export MLFLOW_TRACKING_URI=http://127.0.0.1:5001",
        "export MLFLOW_S3_ENDPOINT_URL=http://127.0.0.1:5002",
        "export AWS_ENDPOINT_URL=http://127.0.0.1:5002",
        "export AWS_ACCESS_KEY_ID=testing",
        "export AWS_SECRET_ACCESS_KEY=testing",
        "export AWS_DEFAULT_REGION=us-east-1",
        'artifact_location="s3://registry-autopilot-artifacts/mlflow/my-experiment"',
    ):
        assert line in text


def test_deaths_after_a_batch_never_make_a_crash_loop() -> None:
    # GIVEN the guard's limit of 3 deaths at start within 120 s
    guard = CrashLoopGuard(3, 120.0)
    # WHEN a route's workers die many times, each after it took a batch (killed mid-batch, out of memory)
    # THEN it is never a crash loop: each is replaced
    assert not any(guard.record("register", at_start=False, now=float(t)) for t in range(20))


def test_three_deaths_at_start_within_the_window_are_a_crash_loop() -> None:
    guard = CrashLoopGuard(3, 120.0)
    # GIVEN two deaths at start of one route, and one of another route
    assert guard.record("register", at_start=True, now=0.0) is False
    assert guard.record("register", at_start=True, now=50.0) is False
    assert guard.record("validate", at_start=True, now=60.0) is False
    # WHEN the first route's workers die at start a third time within the window
    # THEN that is a crash loop
    assert guard.record("register", at_start=True, now=110.0) is True


def test_deaths_at_start_spread_wider_than_the_window_are_not_a_crash_loop() -> None:
    guard = CrashLoopGuard(3, 120.0)
    # GIVEN deaths at start 100 s apart
    # WHEN they go on
    # THEN at most two ever fall within 120 s: never a crash loop
    assert not any(guard.record("register", at_start=True, now=100.0 * i) for i in range(10))


@pytest.mark.parametrize(
    ("returncode", "said"),
    [(None, "running"), (0, "exited with code 0"), (3, "exited with code 3"), (-9, "killed by SIGKILL")],
)
def test_how_a_worker_ended_is_said_in_words(returncode: int | None, said: str) -> None:
    assert describe_exit(returncode) == said


def test_tables_line_up_their_columns() -> None:
    # GIVEN rows of cells
    # WHEN they are printed as a table
    # THEN each column is as wide as its widest cell, under a rule
    assert format_table(["model", "version"], [["churn", "1"]]) == "model  version\n-----  -------\nchurn  1"
