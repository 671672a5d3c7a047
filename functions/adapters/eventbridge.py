"""The project bus behind the `EventPublisher` port.

PutEvents can answer 200 and still not publish: each entry of the answer has either an `EventId` or an `ErrorCode`,
and `FailedEntryCount` says how many failed. EventBridge's guide says to "detect unsuccessful entries and include
them in a subsequent call" (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html), and its
API reference names the retryable codes, `InternalFailure` and `ThrottlingException`, apart from the ones retrying
cannot fix (`AccessDeniedException`, `MalformedDetail`, `NotAuthorizedForSourceException` ...)
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html). botocore does not retry
a 200, so the entry is sent again here, a few times with a short jittered backoff, and a failure that persists is
`Unavailable` (`event_bus_throttled`, `event_bus_unavailable`, or `event_bus_refused` for the codes retrying cannot
fix): never taken for success. The record is then retried by its queue, and the work before the publish is
idempotent, so the event goes out once it can; one that went out before a later step failed goes out again, which
consumers tolerate (they key on model name and version: validation writes the same verdict, alias moves are no-ops
the second time).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from functions.adapters import aws
from functions.domain.errors import Unavailable
from functions.domain.ports import EventPublisher

DEPENDENCY = "event_bus"
ENTRY_ATTEMPTS = 3
"""PutEvents calls per event when its entry fails (each call has botocore's own retries for errors)."""
RETRYABLE_ENTRY_CODES = frozenset({"InternalFailure", "ThrottlingException"})
ENTRY_BACKOFF_SECONDS = 0.2


class EventBridgePublisher(EventPublisher):
    def __init__(
        self,
        client: BaseClient | None = None,
        *,
        bus_name: str,
        source: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._events = client or aws.client("events")
        self._bus_name = bus_name
        self._source = source
        self._sleep = sleep

    def publish(self, detail: BaseModel) -> None:
        detail_type = type(detail).model_fields["detail_type"].default.value
        entry = {
            "Source": self._source,
            "DetailType": detail_type,
            "Detail": detail.model_dump_json(),
            "EventBusName": self._bus_name,
        }
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._events.put_events(Entries=[entry])
            except (ClientError, BotoCoreError) as error:
                raise aws.dependency_failure(DEPENDENCY, f"EventBridge PutEvents ({detail_type})", error) from error
            if not response.get("FailedEntryCount"):
                return
            failure = (response.get("Entries") or [{}])[0]
            code = str(failure.get("ErrorCode") or "")
            if code not in RETRYABLE_ENTRY_CODES or attempt == ENTRY_ATTEMPTS:
                raise entry_failure(detail_type, code, str(failure.get("ErrorMessage") or ""), attempts=attempt)
            self._sleep(random.uniform(0, ENTRY_BACKOFF_SECONDS * 2**attempt))  # nosec B311: retry jitter


def entry_failure(detail_type: str, code: str, message: str, *, attempts: int) -> Unavailable:
    """What a PutEvents entry that kept failing means: throttled, unavailable, or refused (cannot be fixed by retrying)."""
    if code == "ThrottlingException":
        kind = "throttled"
    elif code in RETRYABLE_ENTRY_CODES:
        kind = "unavailable"
    else:
        kind = "refused"
    return Unavailable(
        f"{DEPENDENCY}_{kind}",
        f"EventBridge PutEvents ({detail_type}) failed the entry {attempts} time(s) ({code or 'no ErrorCode'}): "
        f"{message[:300]}",
    )
