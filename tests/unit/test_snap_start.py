"""Under SnapStart the handlers build their dependencies during INIT (into the snapshot); on demand, on first use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.coldstart import handler_environment
from functions.routing import ROUTES

PROBE = """
import json, sys
import {module} as handler
print(json.dumps({{"built": handler._dependencies.cache_info().currsize, "mlflow": "mlflow" in sys.modules}}))
"""


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
@pytest.mark.parametrize(("initialization", "built"), [("snap-start", True), ("on-demand", False)])
def test_dependencies_are_built_at_init_only_for_a_snapshot(route, initialization: str, built: bool):
    # GIVEN a fresh interpreter with the function's environment, initialized as Lambda says it is
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "POWERTOOLS_"))}
    env = {**base, **handler_environment(route.name), "AWS_LAMBDA_INITIALIZATION_TYPE": initialization}

    # WHEN the handler module is imported (Lambda's INIT), and nothing is invoked
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=route.handler_module)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # THEN the clients (and MLflow) are in the snapshot; an on-demand container leaves them to the first invocation
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == f'{{"built": {int(built)}, "mlflow": {str(built).lower()}}}'
