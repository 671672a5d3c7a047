"""The business metrics each route's function emits: name, unit and the one dimension a count carries.

All of them go to one namespace (`functions.settings.METRICS_NAMESPACE`) with the function's service name as a
dimension (Powertools adds it). The dashboard (`stacks/constructs/dashboard.py`) draws what this catalogue lists,
route by route, and the handlers' unit tests check every metric a handler emits is listed here under its route, so
the two cannot drift apart. Pure data, like `functions.routing`: the stack imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from functions.project import PROJECT

SERVICE_PREFIX = PROJECT


class Unit(StrEnum):
    COUNT = "Count"
    SECONDS = "Seconds"


@dataclass(frozen=True)
class BusinessMetric:
    name: str
    unit: Unit = Unit.COUNT
    dimension: str | None = None
    """The dimension a count is split by (its values are only known at run time), besides `service`."""
    description: str = ""


UPLOAD_TO_REGISTERED = "UploadToRegisteredSeconds"
UPLOAD_TO_VALIDATED = "UploadToValidatedSeconds"
UPLOAD_TO_ALIAS_MOVED = "UploadToAliasMovedSeconds"

# What every route's batch handling emits (`functions.handlers.sqs_batch`), split by the error's reason.
BATCH_METRICS: tuple[BusinessMetric, ...] = (
    BusinessMetric("Rejected", dimension="reason", description="bad input, sent to the dead-letter queue"),
    BusinessMetric("Deferred", dimension="reason", description="not ready (incomplete upload), re-enqueued"),
    BusinessMetric("Retried", dimension="reason", description="a dependency failed, retried with backoff"),
)

BUSINESS_METRICS: dict[str, tuple[BusinessMetric, ...]] = {
    "register": (
        BusinessMetric("VersionRegistered", description="a new model version for an upload"),
        BusinessMetric("DuplicateSuppressed", description="a delivery or version that was already handled"),
        BusinessMetric("RegistrationSkipped", dimension="reason", description="not a model this pipeline registers"),
        BusinessMetric(UPLOAD_TO_REGISTERED, Unit.SECONDS, description="upload time to a new version"),
    ),
    "validate": (
        BusinessMetric("ValidationPassed", dimension="model"),
        BusinessMetric("ValidationFailed", dimension="model"),
        BusinessMetric("ValidationSkipped", dimension="reason", description="the version no longer exists"),
        BusinessMetric(UPLOAD_TO_VALIDATED, Unit.SECONDS, description="upload time to the verdict"),
    ),
    "aliases": (
        BusinessMetric("AliasMoved", dimension="alias"),
        BusinessMetric("AliasKept", dimension="alias"),
        BusinessMetric("AliasDryRun", dimension="alias"),
        BusinessMetric("PromotionPending", dimension="alias"),
        BusinessMetric(UPLOAD_TO_ALIAS_MOVED, Unit.SECONDS, description="upload time to an alias move on a verdict"),
        # A promotion ladder's decisions (`functions.domain.ladder.Climb`), by the environment of the rung; a refused
        # request is `Rejected` by its reason, as for every route.
        BusinessMetric("LadderPromoted", dimension="environment", description="copied forward, or its aliases moved"),
        BusinessMetric("LadderKept", dimension="environment", description="already there: nothing copied or moved"),
        BusinessMetric("LadderValidating", dimension="environment", description="copied; the rung's gate runs first"),
        BusinessMetric("LadderDryRun", dimension="environment", description="a replayed request: nothing copied"),
    ),
}
"""Keyed by route name (`functions.routing.Route.name`); a route without an entry gets the batch metrics only."""


def service_name(route_name: str) -> str:
    """The Powertools service name of a route's function, the `service` dimension of its metrics."""
    return f"{SERVICE_PREFIX}-{route_name}"
