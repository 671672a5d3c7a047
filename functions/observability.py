"""The one Logger, Tracer and Metrics of each function (service name and namespace from the environment)."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

# Counts with dimensions go out at once (`count` below), so a flush may legitimately find nothing left.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def count(name: str, **dimensions: str) -> None:
    """Emit one count now; with dimensions (say, a reason) it goes out as its own EMF record."""
    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        for key, value in dimensions.items():
            metric.add_dimension(name=key, value=value)
