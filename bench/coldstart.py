"""Cold start: each handler's INIT and first-invocation setup in a fresh process, beside the bare client import.

Measured where the functions run: a fresh `python -S` process whose only packages are the Lambda bundle's (the
pinned `functions/requirements.lock`, installed for this machine under `.venv/bench-lambda-deps`) plus the AWS SDK
that Lambda's runtime provides, so nothing of the development environment (full MLflow, pandas) is imported.

Per handler, two figures:
- `init_s`: `import <handler module>`, what Lambda's INIT phase runs for an on-demand container;
- `setup_s`: that plus `_dependencies()` (MLflow client, boto3 clients, Powertools idempotency), which an on-demand
  container does on its first invocation and a SnapStart version does during INIT, once, before its snapshot.
The function environment points at 127.0.0.1 ports nothing listens on: building clients makes no request. The
reference times `from mlflow import MlflowClient` the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import version
from pathlib import Path

from functions.project import ROOT, SANDBOX_REGION
from functions.routing import ROUTES
from functions.settings import function_environment

REPO_ROOT = ROOT
LOCK = REPO_ROOT / "functions" / "requirements.lock"
LAMBDA_DEPS = REPO_ROOT / ".venv" / "bench-lambda-deps"
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer")
"""Lambda's Python runtime provides the AWS SDK; the bundle does not ship it."""

_PROBE = """
import sys
sys.path[:0] = {path!r}
import json, time
started = time.perf_counter()
{statement}
imported = time.perf_counter()
{init}
done = time.perf_counter()
print(json.dumps({{"init_s": imported - started, "setup_s": done - started}}))
"""

_NOWHERE = "http://127.0.0.1:9"
"""The discard port: nothing listens, and init must not try."""


def handler_environment(route_name: str) -> dict[str, str]:
    """A complete function environment for `route_name`, with dummy credentials and local endpoints."""
    route = next(r for r in ROUTES if r.name == route_name)
    env = function_environment(
        route,
        bucket="bench-artifacts",
        artifact_root_prefix="mlflow",
        event_bus_name="bench-bus",
        idempotency_table="bench-idempotency",
        queue_url=f"{_NOWHERE}/123456789012/bench-{route.name}",
        dead_letter_queue_url=f"{_NOWHERE}/123456789012/bench-{route.name}-dlq",
        tracking_uri=_NOWHERE,
    )
    return {
        **env,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": SANDBOX_REGION,
        "AWS_ENDPOINT_URL": _NOWHERE,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def lambda_dependencies(progress: Callable[[str], None] = lambda _: None) -> Path:
    """The functions' packages for this machine (installed once per lock and SDK version)."""
    runtime = [f"{name}=={version(name)}" for name in RUNTIME_PACKAGES]
    stamp = hashlib.sha256(LOCK.read_bytes() + "\n".join(runtime).encode()).hexdigest()
    marker = LAMBDA_DEPS / ".stamp"
    if marker.is_file() and marker.read_text() == stamp:
        return LAMBDA_DEPS
    progress(f"installing the functions' dependencies ({LOCK.name} + {', '.join(runtime)}) into {LAMBDA_DEPS}")
    shutil.rmtree(LAMBDA_DEPS, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
        + ["--target", str(LAMBDA_DEPS), "-r", str(LOCK), *runtime],
        check=True,
        timeout=900,
    )
    marker.write_text(stamp)
    return LAMBDA_DEPS


def _sample(statement: str, init: str, env: Mapping[str, str], deps: Path) -> dict[str, float]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "POWERTOOLS_", "PYTHON"))}
    probe = _PROBE.format(path=[str(deps), str(REPO_ROOT)], statement=statement, init=init)
    result = subprocess.run(
        [sys.executable, "-S", "-s", "-c", probe],  # -S: no site-packages, only the bundle's packages
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cold-start probe failed ({statement}): {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(
    *, samples: int = 5, routes: tuple[str, ...] | None = None, progress: Callable[[str], None] = lambda _: None
) -> dict:
    """Median INIT and setup seconds per handler and for the bare client import, and the ratios.

    Samples are interleaved (reference, then each handler, `samples` times), so a change in the machine's load
    during the run affects the reference and the handlers alike.
    """
    deps = lambda_dependencies(progress)
    names = routes or tuple(r.name for r in ROUTES)
    modules = {name: next(r for r in ROUTES if r.name == name).handler_module for name in names}
    reference: list[dict[str, float]] = []
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(samples):
        reference.append(_sample("from mlflow import MlflowClient", "", {"MLFLOW_DISABLE_TELEMETRY": "true"}, deps))
        for name in names:
            statement = f"import {modules[name]} as handler"
            runs[name].append(_sample(statement, "handler._dependencies()", handler_environment(name), deps))
    reference_s = statistics.median(s["init_s"] for s in reference)
    handlers = {}
    for name, measured in runs.items():
        init_s = statistics.median(s["init_s"] for s in measured)
        setup_s = statistics.median(s["setup_s"] for s in measured)
        handlers[name] = {
            "init_s": init_s,
            "init_ratio": init_s / reference_s,
            "setup_s": setup_s,
            "setup_ratio": setup_s / reference_s,
        }
    return {
        "samples": samples,
        "environment": f"python -S with {LOCK.relative_to(REPO_ROOT)} + {', '.join(RUNTIME_PACKAGES)} only",
        "reference_import_s": reference_s,
        "handlers": handlers,
    }


if __name__ == "__main__":
    print(json.dumps(measure(samples=int(sys.argv[1]) if len(sys.argv) > 1 else 5), indent=2))
