"""The tracer is only built when tracing is on: Powertools' Tracer imports the X-Ray SDK even when disabled."""

from __future__ import annotations

import subprocess
import sys

import pytest

from functions.observability import UntracedHandler, tracing_disabled


def test_the_untraced_handler_returns_the_function_itself_with_or_without_options():
    # GIVEN a handler function
    def handler(event: dict, context: object) -> dict:
        return {"event": event}

    # WHEN it is decorated bare and with Powertools' options
    bare = UntracedHandler().capture_lambda_handler(handler)
    with_options = UntracedHandler().capture_lambda_handler(capture_response=False)(handler)

    # THEN both are the function, unchanged
    assert bare is handler
    assert with_options is handler
    assert bare({"a": 1}, None) == {"event": {"a": 1}}


@pytest.mark.parametrize(("value", "disabled"), [("true", True), ("1", True), ("false", False)])
def test_tracing_is_read_from_the_powertools_switch(monkeypatch: pytest.MonkeyPatch, value: str, disabled: bool):
    # GIVEN the switch the stack sets
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", value)

    # WHEN it is read / THEN it says whether tracing is off
    assert tracing_disabled() is disabled


@pytest.mark.parametrize(("value", "xray_imported"), [("true", False), ("false", True)])
def test_the_xray_sdk_is_imported_only_when_tracing_is_on(value: str, xray_imported: bool):
    # GIVEN a fresh interpreter with tracing switched off or on
    probe = "import sys, functions.handlers.register; print('aws_xray_sdk.core' in sys.modules)"

    # WHEN a handler module is imported
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"POWERTOOLS_TRACE_DISABLED": value, "POWERTOOLS_SERVICE_NAME": "t", "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # THEN the X-Ray SDK was loaded only for tracing
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(xray_imported)
