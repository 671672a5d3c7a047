"""A message in a route's dead-letter queue, as the sandbox and `python -m ops redrive` read it.

A route function dead-letters a record it refuses (`functions.handlers.sqs_batch`) with the message attributes
`reason` and `error`; SQS moves a record there after the queue's maxReceiveCount with neither. The body is the
EventBridge event the record carried. A letter of a FIFO dead-letter queue keeps its message group.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REASON_ATTRIBUTE = "reason"
ERROR_ATTRIBUTE = "error"
DEAD_LETTER_ATTRIBUTES = (REASON_ATTRIBUTE, ERROR_ATTRIBUTE)
"""The message attributes a function sets when it dead-letters a record itself."""


@dataclass(frozen=True)
class DeadLetter:
    """A message in a route's dead-letter queue."""

    route: str
    message_id: str
    body: str
    event: dict | None
    """The body parsed, when it is a JSON object (an EventBridge event)."""
    reason: str | None
    """The `reason` message attribute (set when a handler dead-letters a record itself)."""
    error: str | None
    receive_count: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    message_group_id: str | None = None
    """Set for a letter in a FIFO dead-letter queue."""
    receipt_handle: str = ""

    @classmethod
    def from_message(cls, message: Mapping[str, Any], *, route: str) -> DeadLetter:
        """One SQS `ReceiveMessage` message (with its message attributes and `Attributes`) of `route`'s queue."""
        attributes = {
            name: (value or {}).get("StringValue", "")
            for name, value in sorted((message.get("MessageAttributes") or {}).items())
        }
        system = message.get("Attributes") or {}
        body = message.get("Body", "")
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        return cls(
            route=route,
            message_id=message["MessageId"],
            body=body,
            event=event if isinstance(event, dict) else None,
            reason=attributes.get(REASON_ATTRIBUTE) or None,
            error=attributes.get(ERROR_ATTRIBUTE) or None,
            receive_count=int(system.get("ApproximateReceiveCount", 0)),
            attributes=attributes,
            message_group_id=system.get("MessageGroupId") or None,
            receipt_handle=message.get("ReceiptHandle", ""),
        )

    @property
    def detail(self) -> dict:
        detail = (self.event or {}).get("detail")
        return detail if isinstance(detail, dict) else {}

    @property
    def key(self) -> str | None:
        """The S3 object key of the dead-lettered event (to tell a test's letters from others')."""
        obj = self.detail.get("object")
        return obj.get("key") if isinstance(obj, dict) else None
