"""A bucket's notification configuration, and the same configuration with EventBridge delivery turned on.

S3 keeps one notification configuration per bucket: its SNS topics, SQS queues and Lambda functions, and one on/off
switch for EventBridge (`EventBridgeConfiguration`, an empty object when on). `PutBucketNotificationConfiguration`
replaces the whole configuration, so turning EventBridge on without losing the rest is Get-then-Put of the whole
configuration with the switch added (S3 user guide, "Enabling Amazon EventBridge"). This is what CDK's
`Custom::S3BucketNotifications` got wrong on shared buckets (aws/aws-cdk #29653, #30607, #29004, #13797, #34100).

Pure: the adapter (`functions.adapters.bucket_notifications`) reads and writes, the preflight
(`ops.preflight`) prints the merged configuration for the bucket's owner to put.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EVENT_BRIDGE = "EventBridgeConfiguration"
DESTINATIONS = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")
"""The other kinds of notification a bucket may have; every one of them is kept as it is."""


def notification_configuration(response: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration part of a GetBucketNotificationConfiguration response (no ResponseMetadata)."""
    return {kind: response[kind] for kind in (*DESTINATIONS, EVENT_BRIDGE) if kind in response}


def event_bridge_on(response: Mapping[str, Any]) -> bool:
    return EVENT_BRIDGE in response


def with_event_bridge(response: Mapping[str, Any]) -> dict[str, Any]:
    """The whole configuration, every topic, queue and function kept, with EventBridge delivery on."""
    return {**notification_configuration(response), EVENT_BRIDGE: {}}


def destination_count(response: Mapping[str, Any]) -> int:
    """How many SNS/SQS/Lambda notifications the configuration holds (for messages and checks)."""
    return sum(len(response.get(kind, [])) for kind in DESTINATIONS)
