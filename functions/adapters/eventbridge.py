"""The project bus behind the `EventPublisher` port."""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from functions.domain.errors import Unavailable
from functions.domain.ports import EventPublisher


class EventBridgePublisher(EventPublisher):
    def __init__(self, client=None, *, bus_name: str, source: str) -> None:  # type: ignore[no-untyped-def]
        self._events = client or boto3.client("events")
        self._bus_name = bus_name
        self._source = source

    def publish(self, detail: BaseModel) -> None:
        detail_type = detail.model_fields["detail_type"].default.value
        entry = {
            "Source": self._source,
            "DetailType": detail_type,
            "Detail": detail.model_dump_json(),
            "EventBusName": self._bus_name,
        }
        try:
            response = self._events.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as error:
            raise Unavailable("event_bus_unavailable", f"PutEvents failed: {error}") from error
        if response.get("FailedEntryCount"):
            failure = response["Entries"][0]
            raise Unavailable(
                "event_bus_unavailable",
                f"PutEvents refused the event: {failure.get('ErrorCode')} {failure.get('ErrorMessage')}",
            )
