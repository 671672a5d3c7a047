"""The pipeline's wiring, defined once.

Each `Route` says which events go to which queue and which handler drains it, with the queue and
function settings. The CDK stack (`stacks/`) turns a route into a rule, a queue with its dead-letter
queue, a function and an event source mapping; the sandbox (`sandbox/`) turns the same route into the
same rule and queues on the local emulator and runs a worker that calls the same handler. Nothing
else states these patterns, so the two cannot drift apart (`tests/infrastructure` checks it).

Pure data: no AWS or MLflow imports, so the stack, the sandbox and the functions can all import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from functions.models.events import DetailType
from functions.project import PROJECT

EVENT_SOURCE = PROJECT
"""The `source` of every event the project emits (its event contract)."""

S3_SOURCE = "aws.s3"
"""The `source` of the artifact bucket's own events (S3 puts them on the default bus)."""

REPLAY_SOURCE = f"{PROJECT}.replay"
"""The `source` under which `python -m replay send` re-sends recorded S3 events: EventBridge's PutEvents refuses
`aws.*` sources, so the register rule accepts this one too. A forged event cannot register anything that is not in
the bucket: the register function re-reads the object it names from S3 and checks the bucket (see docs/sandbox-and-replay.md)."""

S3_EVENT_SOURCES = (S3_SOURCE, REPLAY_SOURCE)

PLAIN_UPLOAD_PREFIX = "models"
"""Plain uploads live under `models/<model-name>/<anything>/MLmodel`."""

DEFAULT_ARTIFACT_ROOT_PREFIX = "mlflow"
"""MLflow's own layouts live under `s3://<bucket>/<artifact root prefix>/`."""

MLMODEL_FILE = "MLmodel"


class Bus(StrEnum):
    """Which event bus a route's rule lives on."""

    DEFAULT = "default"  # where S3 delivers its events
    PROJECT = "project"  # the project's own bus (its name comes from the stack or the sandbox)


@dataclass(frozen=True)
class Route:
    """One hop of the pipeline: rule -> queue (with DLQ) -> handler."""

    name: str
    handler: str
    bus: Bus
    timeout_seconds: int
    memory_mb: int
    batch_size: int = 10
    max_batching_window_seconds: int = 0
    max_receive_count: int = 5
    description: str = ""
    fifo_group: str | None = None
    """Set for a FIFO route: its queues are FIFO and every event goes into this one message group, so the
    route's function handles one batch at a time, in arrival order (Lambda's ESM on FIFO queues)."""

    @property
    def visibility_timeout_seconds(self) -> int:
        # AWS recommends at least six times the function timeout for an SQS event source.
        return 6 * self.timeout_seconds

    @property
    def fifo(self) -> bool:
        return self.fifo_group is not None

    @property
    def handler_module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    def event_pattern(self, *, bucket_name: str) -> dict[str, Any]:
        """The EventBridge pattern of this route's rule, in EventBridge's JSON form."""
        return _PATTERNS[self.name](bucket_name)


def _register_pattern(bucket_name: str) -> dict[str, Any]:
    return {
        "source": list(S3_EVENT_SOURCES),
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket_name]},
            "object": {"key": [{"suffix": f"/{MLMODEL_FILE}"}]},
        },
    }


def _validate_pattern(bucket_name: str) -> dict[str, Any]:
    return {
        "source": [EVENT_SOURCE],
        "detail-type": [DetailType.MODEL_VERSION_REGISTERED.value, DetailType.VALIDATION_REQUESTED.value],
    }


def _aliases_pattern(bucket_name: str) -> dict[str, Any]:
    # Failed verdicts come too: the function acknowledges them (no move), and the pattern stays one L2 shape.
    return {
        "source": [EVENT_SOURCE],
        "detail-type": [
            DetailType.MODEL_VERSION_VALIDATED.value,
            DetailType.PROMOTION_REQUESTED.value,
            DetailType.ROLLBACK_REQUESTED.value,
            DetailType.ENVIRONMENT_PROMOTION_REQUESTED.value,
        ],
    }


_PATTERNS = {
    "register": _register_pattern,
    "validate": _validate_pattern,
    "aliases": _aliases_pattern,
}

ROUTE_MEMORY_MB = 512
"""From `make bench`: a route worker peaks at ~200 MB resident and spends most of a record waiting on MLflow, S3 and
EventBridge (about 20 ms of CPU in 130 ms), so a larger size would buy CPU the functions barely use. Check against
Lambda's REPORT lines (Max Memory Used, Duration) after deploying."""

REGISTER = Route(
    name="register",
    handler="functions.handlers.register.lambda_handler",
    bus=Bus.DEFAULT,
    timeout_seconds=60,
    memory_mb=ROUTE_MEMORY_MB,
    batch_size=10,
    # With retry backoff from 2 s to 256 s (functions.domain.delivery), 8 receives ride out ~8 minutes of outage.
    max_receive_count=8,
    description="Registers MLflow models uploaded to the artifact bucket",
)

VALIDATE = Route(
    name="validate",
    handler="functions.handlers.validate.lambda_handler",
    bus=Bus.PROJECT,
    timeout_seconds=60,
    memory_mb=ROUTE_MEMORY_MB,
    batch_size=10,
    max_receive_count=8,
    description="Validates registered model versions against their policy",
)

ALIASES = Route(
    name="aliases",
    handler="functions.handlers.aliases.lambda_handler",
    bus=Bus.PROJECT,
    timeout_seconds=60,
    memory_mb=ROUTE_MEMORY_MB,
    max_receive_count=8,
    # One record per batch: a record that keeps failing then cannot drag the decisions behind it into the DLQ.
    batch_size=1,
    description="Moves aliases on passed verdicts, promotions and rollbacks, one decision at a time",
    # One group: alias decisions never race, whatever the model (they are few and fast).
    fifo_group="alias-moves",
)

ROUTES: tuple[Route, ...] = (REGISTER, VALIDATE, ALIASES)

PROOF_TIMEOUT_SECONDS = 600
"""A proof's whole budget on AWS (building the model's environment included): `proof_timeout` past it."""
PROOF_EPHEMERAL_STORAGE_MB = 4096
"""/tmp for the downloaded model (<= 512 MiB), its scratch copy, and the cached environments with uv's cache (a
scikit-learn stack is ~0.4 GB). Over 512 MB, so the proving validate function runs without SnapStart."""


def proving(route: Route) -> Route:
    """The validate route as a deployment that proves models needs it (stack context `proof`, docs/architecture.md).

    Lambda's longest timeout, so a proof that ends at its own timeout still leaves 300 s for the rest of the record;
    one record per batch, so a slow proof never holds nine other verdicts back or drags them past the timeout;
    3008 MB, because two interpreters import MLflow and the model's stack (and Lambda's CPU grows with memory)."""
    return replace(route, timeout_seconds=900, memory_mb=3008, batch_size=1)


def route(name: str) -> Route:
    for candidate in ROUTES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no route named {name!r}; known: {', '.join(r.name for r in ROUTES)}")


def s3_forward_pattern(bucket_name: str, prefixes: Sequence[str]) -> dict[str, Any]:
    """What a forwarder on the default bus of the bucket's account sends to the project bus (bucket in another account).

    The register pattern, narrowed twice: S3's own events only (`python -m replay send` puts to the project's side,
    never to the bucket account's bus), and `…/MLmodel` keys under the watched prefixes only, so none of the rest of
    a shared bucket leaves its account. EventBridge's `wildcard` operator matches `*` against any characters, `/`
    included ("Comparison operators for use in event patterns",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html).
    """
    cleaned = [prefix.strip("/") for prefix in prefixes]
    if not cleaned or any(not prefix or "*" in prefix or "\\" in prefix for prefix in cleaned):
        raise ValueError(f"forwarded prefixes must be non-empty and free of '*' and '\\'; got {list(prefixes)!r}")
    pattern = REGISTER.event_pattern(bucket_name=bucket_name)
    pattern["source"] = [S3_SOURCE]
    pattern["detail"]["object"]["key"] = [{"wildcard": f"{prefix}/*/{MLMODEL_FILE}"} for prefix in cleaned]
    return pattern


def receiving_forwarded_events(route: Route) -> Route:
    """The route as a stack whose bucket is in another account needs it: a route on the default bus (register) gets
    its rule on the project bus, where the bucket account's forwarder delivers. Events forwarded bus to bus keep their
    `source` (aws.s3), `detail-type` and `detail`, so the rule's pattern stays the same."""
    return replace(route, bus=Bus.PROJECT) if route.bus is Bus.DEFAULT else route


def s3_archive_pattern(bucket_name: str) -> dict[str, Any]:
    """What the default-bus archive keeps: every S3 event of the artifact bucket."""
    return {"source": [S3_SOURCE], "detail": {"bucket": {"name": [bucket_name]}}}


def s3_recorder_pattern(bucket_name: str) -> dict[str, Any]:
    """What the recorder copies from the default bus: the artifact bucket's S3 events, sent ones included."""
    return {"source": list(S3_EVENT_SOURCES), "detail": {"bucket": {"name": [bucket_name]}}}


def project_archive_pattern() -> dict[str, Any]:
    """What the project-bus archive keeps: every event the project emits."""
    return {"source": [EVENT_SOURCE]}


@dataclass(frozen=True)
class Endpoint:
    """An HTTP entry point (a Lambda function URL): no rule or queue in front, the caller waits for the answer."""

    name: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    description: str = ""


WEBHOOK = Endpoint(
    name="webhook",
    handler="functions.handlers.webhook.lambda_handler",
    # MLflow waits 30 s for an answer; verifying and publishing takes well under a second.
    timeout_seconds=10,
    memory_mb=256,
    description="Receives signed MLflow registry webhooks and announces hand-registered versions",
)
