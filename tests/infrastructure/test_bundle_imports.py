"""The bundle is complete: every route's handler imports with only the bundled dependencies and the runtime's boto3.

The real bundle targets Lambda (cp314, aarch64), which cannot run here, so this builds the same bundle with the
same bundler for the host's Python and platform (same requirements, same pruning), and imports each handler in a
Python without site-packages, as Lambda would: a package missing from `functions/requirements.txt` (but present
in the dev venv) fails here instead of in the first Lambda invocation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from functions.routing import ROUTES, WEBHOOK
from functions.settings import function_environment
from stacks.bundling import LocalPythonBundler
from stacks.constants import FUNCTIONS_DIR, FUNCTIONS_LOCK
from stacks.constructs.bucket_event_bridge import HANDLER as BUCKET_EVENT_BRIDGE_HANDLER
from tests.infrastructure.conftest import REPO_ROOT

# Every route's handler, the webhook endpoint's, and the existing bucket's EventBridge custom resource's.
HANDLERS = [
    tuple(handler.rsplit(".", 1))
    for handler in [r.handler for r in ROUTES] + [WEBHOOK.handler, BUCKET_EVENT_BRIDGE_HANDLER]
]


def _runtime_boto3_pin() -> str:
    """boto3 as pinned for the project (the Lambda runtime provides its own; the bundle leaves it out)."""
    text = (REPO_ROOT / "requirements.txt").read_text()
    match = re.search(r"^boto3==\S+", text, re.MULTILINE)
    return match.group(0) if match else "boto3"


@pytest.mark.slow
def test_every_handler_imports_with_only_the_bundled_dependencies(tmp_path: Path):
    # GIVEN the bundle built for the host Python (dependencies pruned like Lambda's) and the runtime's boto3
    bundle, runtime = tmp_path / "bundle", tmp_path / "runtime"
    host_python = f"{sys.version_info.major}.{sys.version_info.minor}"
    LocalPythonBundler(
        requirements=FUNCTIONS_LOCK, packages=[FUNCTIONS_DIR], python_version=host_python, platforms=()
    ).try_bundle(str(bundle), None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            "--target",
            str(runtime),
            _runtime_boto3_pin(),
        ],
        check=True,
    )
    assert not (bundle / "boto3").exists()

    # WHEN each route's handler module is imported by a Python that sees nothing but the bundle and boto3
    environment = function_environment(
        ROUTES[0],
        bucket="bucket",
        artifact_root_prefix="mlflow",
        event_bus_name="bus",
        idempotency_table="table",
        queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/q",
        dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
        tracking_uri="https://mlflow.example.invalid",
    )
    code = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(bundle)!r}, {str(runtime)!r}]\n"
        f"for module, function in {HANDLERS!r}:\n"
        "    assert callable(getattr(importlib.import_module(module), function))\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={
            "PATH": os.environ.get("PATH", ""),
            "AWS_DEFAULT_REGION": "us-east-1",
            "LAMBDA_TASK_ROOT": str(bundle),
            **environment,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # THEN every import succeeds
    assert result.returncode == 0, result.stderr[-3000:]
