"""Cold start: import + first-invocation init of each handler in a fresh process, beside the bare client import.

Each sample is a new `python -c` process (nothing cached in memory; byte-code already compiled, as in a Lambda
bundle). A handler sample times `import <module>` and then `<module>._dependencies()` (MLflow client, boto3
clients, Powertools idempotency) with a function environment pointing at 127.0.0.1 ports nothing listens on:
building clients makes no request. The reference sample times `from mlflow import MlflowClient`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Mapping

from functions.routing import ROUTES
from functions.settings import function_environment

_PROBE = """
import json, sys, time
started = time.perf_counter()
{statement}
imported = time.perf_counter()
{init}
done = time.perf_counter()
print(json.dumps({{"import_s": imported - started, "init_s": done - started}}))
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
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": _NOWHERE,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def _sample(statement: str, init: str, env: Mapping[str, str]) -> dict[str, float]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "POWERTOOLS_"))}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(statement=statement, init=init)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cold-start probe failed ({statement}): {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(*, samples: int = 5, routes: tuple[str, ...] | None = None) -> dict:
    """Median import and init seconds per handler and for the bare client import, and the ratios.

    Samples are interleaved (reference, then each handler, `samples` times), so a change in the machine's load
    during the run affects the reference and the handlers alike.
    """
    names = routes or tuple(r.name for r in ROUTES)
    modules = {name: next(r for r in ROUTES if r.name == name).handler_module for name in names}
    reference: list[dict[str, float]] = []
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(samples):
        reference.append(_sample("from mlflow import MlflowClient", "", {"MLFLOW_DISABLE_TELEMETRY": "true"}))
        for name in names:
            statement = f"import {modules[name]} as handler"
            runs[name].append(_sample(statement, "handler._dependencies()", handler_environment(name)))
    reference_s = statistics.median(s["import_s"] for s in reference)
    handlers = {}
    for name, measured in runs.items():
        init_s = statistics.median(s["init_s"] for s in measured)
        handlers[name] = {
            "import_s": statistics.median(s["import_s"] for s in measured),
            "init_s": init_s,
            "ratio": init_s / reference_s,
        }
    return {"samples": samples, "reference_import_s": reference_s, "handlers": handlers}


if __name__ == "__main__":
    print(json.dumps(measure(samples=int(sys.argv[1]) if len(sys.argv) > 1 else 5), indent=2))
