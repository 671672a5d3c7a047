"""moto's server, with two fixes: events keep their `account` on the way to SQS, and a bucket's notification
configuration reports its EventBridge switch.

moto delivers an event sent with PutEvents to an SQS target through a default input template that
leaves out `account` (its input paths map has it; the template does not use it). On AWS the target
receives the whole event, and the functions parse it with Powertools' `EventBridgeModel`, where
`account` is required. So the sandbox runs moto with that template completed.

moto keeps `EventBridgeConfiguration` when it is put (and sends the bucket's events to EventBridge) but leaves it
out of GetBucketNotificationConfiguration; S3 returns it (an empty element when on). `python -m ops preflight` and
the bucket's EventBridge custom resource read it, so the sandbox's moto reports it.

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


def main() -> None:
    if not complete_default_event_template():
        print("sandbox.moto_server: moto has no default event template to complete; running it as is", file=sys.stderr)
    if not report_event_bridge_configuration():
        print(
            "sandbox.moto_server: moto's S3 has no notification getter to complete; running it as is", file=sys.stderr
        )
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
