"""The one Logger, Tracer and Metrics of each function (service name and namespace from the environment)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

# Counts with dimensions go out at once (`count` below), so a flush may legitimately find nothing left.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


class UntracedHandler:
    """What the handlers use of Powertools' Tracer, doing nothing: tracing is off (the default).

    Powertools' Tracer imports and configures the X-Ray SDK even when tracing is disabled (about 0.2 s of
    every cold start), so it is only built when tracing is on.
    """

    disabled = True

    def capture_lambda_handler(
        self, lambda_handler: Callable | None = None, **_options: Any
    ) -> Callable[[Callable], Callable] | Callable:
        if lambda_handler is None:
            return lambda handler: handler
        return lambda_handler


def tracing_disabled() -> bool:
    """Powertools' own reading of its switch (the stack sets it from the `tracing` context key)."""
    return resolve_truthy_env_var_choice(env=os.getenv(constants.TRACER_DISABLED_ENV, "false"))


def _tracer() -> Any:
    if tracing_disabled():
        return UntracedHandler()
    from aws_lambda_powertools import Tracer

    return Tracer()


logger = Logger()
tracer = _tracer()
metrics = Metrics()


def count(name: str, **dimensions: str) -> None:
    """Emit one count now; with dimensions (say, a reason) it goes out as its own EMF record."""
    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        for key, value in dimensions.items():
            metric.add_dimension(name=key, value=value)


def record_latency(name: str, since: datetime | None, *, now: datetime | None = None) -> float | None:
    """Emit the seconds from `since` (an upload's time) to now as one value of `name`; nothing when it is unknown.

    A clock running behind S3's gives a small negative difference: it counts as 0 rather than skewing the metric.
    """
    if since is None:
        return None
    if since.tzinfo is None:  # event times are UTC; a naive one has lost its zone on the way
        since = since.replace(tzinfo=UTC)
    seconds = max(((now or datetime.now(UTC)) - since).total_seconds(), 0.0)
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=seconds)
    return seconds
