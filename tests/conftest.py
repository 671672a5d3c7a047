"""Settings every suite shares: Powertools needs a service and a namespace, and nothing talks to AWS."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

EVENTS = Path(__file__).parent / "events"

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "registry-autopilot-tests")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "RegistryAutopilot")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(autouse=True)
def _reset_metrics():
    from aws_lambda_powertools.metrics.provider import cold_start

    from functions.observability import metrics

    metrics.clear_metrics()
    metrics.clear_default_dimensions()
    cold_start.is_cold_start = True
    yield
    metrics.clear_metrics()
