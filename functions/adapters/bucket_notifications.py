"""Turn a bucket's EventBridge delivery on, keeping its other notifications (Get-then-Put of the whole configuration).

S3 has no conditional write for a notification configuration: a change made by someone else between the Get and the
Put would be lost. The window is one round trip; the custom resource runs this once per deployment, and the
preflight (`python -m ops preflight`) shows the configuration before anything is written.
"""

from __future__ import annotations

from typing import Any

from functions.domain.bucket_notifications import event_bridge_on, with_event_bridge


def enable_event_bridge(s3: Any, bucket: str) -> bool:
    """EventBridge delivery on for `bucket`, nothing else changed; False when it was on already (nothing written)."""
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    if event_bridge_on(current):
        return False
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration=with_event_bridge(current),
        # The existing destinations were validated when their owners added them; putting them back unchanged must
        # not fail because one of them (a queue policy, a function permission) has changed since.
        SkipDestinationValidation=True,
    )
    return True
