"""Parsing the project's own events out of SQS records (the body is the EventBridge event)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ValidationError

from functions.domain.errors import Rejected
from functions.models.events import DETAIL_MODELS
from functions.routing import EVENT_SOURCE


def parse_project_event(body: str, *expected: type[BaseModel]) -> tuple[EventBridgeModel, BaseModel]:
    """The envelope and the detail, parsed with the contract's model; `Rejected` when it is not one we expect."""
    try:
        event = EventBridgeModel.model_validate_json(body)
    except ValidationError as error:
        raise Rejected("malformed_event", f"not an EventBridge event: {_problems(error)}") from None
    if event.source != EVENT_SOURCE:
        raise Rejected("unexpected_event", f"source {event.source!r} is not {EVENT_SOURCE!r}")
    model = DETAIL_MODELS.get(event.detail_type)
    if model is None or model not in expected:
        raise Rejected("unexpected_event", f"detail type {event.detail_type!r} is not handled here")
    try:
        return event, model.model_validate(event.detail)
    except ValidationError as error:
        # A workspace MLflow would refuse gets its own reason: the event is well formed, its workspace is not.
        reason = (
            "invalid_workspace" if any(e["loc"][:1] == ("workspace",) for e in error.errors()) else "malformed_event"
        )
        raise Rejected(reason, f"{event.detail_type} detail: {_problems(error)}") from None


def _problems(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in error.errors()[:5])[:1000]
