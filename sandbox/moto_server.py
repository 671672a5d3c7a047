"""moto's server, with three fixes: events keep their `account` on the way to SQS, a bucket's notification
configuration reports its EventBridge switch, and ReceiveMessage stays linear in the queue's depth.

moto delivers an event sent with PutEvents to an SQS target through a default input template that
leaves out `account` (its input paths map has it; the template does not use it). On AWS the target
receives the whole event, and the functions parse it with Powertools' `EventBridgeModel`, where
`account` is required. So the sandbox runs moto with that template completed.

moto keeps `EventBridgeConfiguration` when it is put (and sends the bucket's events to EventBridge) but leaves it
out of GetBucketNotificationConfiguration; S3 returns it (an empty element when on). `python -m ops preflight` and
the bucket's EventBridge custom resource read it, so the sandbox's moto reports it.

moto's ReceiveMessage checks each message it returns against the queue's retention period by asking
GetQueueAttributes for it, and that computes every attribute, the three message counts among them (a pass over all
messages each): a receive of 10 costs 30 passes over the queue. A backfill fills the register queue with thousands
of events, and moto then spent most of its time there (measured: registrations fell from 22/s to about 1/s with
thousands queued; py-spy showed this check). The sandbox reads the retention period from the queue itself: the
same value, the same check.

    python -m sandbox.moto_server -H 127.0.0.1 -p 5000     (the arguments of moto_server)
"""

from __future__ import annotations

import sys
from typing import Any

COMPLETE_EVENT_TEMPLATE = (
    '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", "account": "<account>", '
    '"time": <time>, "region": "<region>", "resources": <resources>, "detail": <detail>}'
)


def complete_default_event_template() -> bool:
    """Put `account` into moto's default event template; False when this moto has no such template."""
    from moto.events.utils import EventTemplateParser

    template = getattr(EventTemplateParser, "DEFAULT_EVENT_INPUT_TEMPLATE", None)
    if not isinstance(template, str):
        return False
    if "<account>" not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = COMPLETE_EVENT_TEMPLATE
    return True


def report_event_bridge_configuration() -> bool:
    """Add `EventBridgeConfiguration` to moto's GetBucketNotificationConfiguration; False when moto differs."""
    from moto.core.responses import ActionResult
    from moto.s3.responses import S3Response

    original = getattr(S3Response, "get_bucket_notification", None)
    if original is None or getattr(original, "reports_event_bridge", False):
        return original is not None

    def get_bucket_notification(self: S3Response) -> Any:
        configuration = self.backend.get_bucket_notification_configuration(self.bucket_name)
        serialized = self.serialized

        def with_event_bridge(result: Any) -> Any:
            if isinstance(result, ActionResult) and isinstance(result.result, dict):
                return serialized(ActionResult({**result.result, "EventBridgeConfiguration": {}}))
            return serialized(result)

        if configuration is not None and configuration.event_bridge is not None:
            self.serialized = with_event_bridge  # type: ignore[method-assign]
        return original(self)

    get_bucket_notification.reports_event_bridge = True  # type: ignore[attr-defined]
    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]
    return True


def retained(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's ReceiveMessage retention check (`SQSBackend.is_message_valid_based_on_retention_period`), reading the
    period off the queue instead of asking GetQueueAttributes for it."""
    from moto.core.utils import unix_time

    retention = int(backend.get_queue(queue_name).message_retention_period)
    return bool(retention + message.sent_timestamp / 1000 > unix_time())


def check_retention_without_counting() -> bool:
    """Put `retained` in place of moto's per-message retention check; False when moto has no such check."""
    from moto.sqs.models import SQSBackend

    if not hasattr(SQSBackend, "is_message_valid_based_on_retention_period"):
        return False
    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]
    return True


def main() -> None:
    if not complete_default_event_template():
        print("sandbox.moto_server: moto has no default event template to complete; running it as is", file=sys.stderr)
    if not report_event_bridge_configuration():
        print(
            "sandbox.moto_server: moto's S3 has no notification getter to complete; running it as is", file=sys.stderr
        )
    if not check_retention_without_counting():
        print("sandbox.moto_server: moto's SQS has no retention check to replace; running it as is", file=sys.stderr)
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
