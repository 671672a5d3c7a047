"""The logical ids of the stack's stateful resources are pinned: CloudFormation replaces a resource whose logical id
changes (a new bucket, table, queue, bus or archive, and the old one deleted or orphaned), so an upgrade that renames
a construct, or moves it under another, would lose data. Changing one of these ids needs a migration plan, not an
update of this list."""

from __future__ import annotations

import pytest

from tests.infrastructure.conftest import Synth

STATEFUL_TYPES = (
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::Events::EventBus",
    "AWS::Events::Archive",
    "AWS::Logs::LogGroup",
)

DEFAULT_STATEFUL_IDS = {
    "AWS::S3::Bucket": {"ArtifactsBucket88671897", "ArtifactsAccessLogs4D97777C"},
    "AWS::KMS::Key": {"ArtifactsKeyA4B22E2B", "MonitoringTopicKey423AF5B2"},
    "AWS::DynamoDB::Table": {"IdempotencyTable48612DF4"},
    "AWS::SQS::Queue": {
        "RegisterPipelineQueueD71AFE50",
        "RegisterPipelineDeadLetterQueueD7D398C7",
        "ValidatePipelineQueue63522D7D",
        "ValidatePipelineDeadLetterQueue6D77993C",
        "AliasesPipelineQueueFD782104",
        "AliasesPipelineDeadLetterQueue0B3B8FFB",
        "AliasesPipelineDeliveryDeadLetterQueueED994DE2",
        "MonitoringNotificationDeadLetterQueue46EAD626",
    },
    "AWS::Events::EventBus": {"EventBusesProjectBusD6CAE1B6"},
    "AWS::Events::Archive": {
        "EventBusesArtifactEventsArchiveEA67C873",
        "EventBusesProjectBusProjectEventsArchiveBDBD4D55",
    },
    "AWS::Logs::LogGroup": {
        "RegisterPipelineLogGroup4B040FA2",
        "ValidatePipelineLogGroupFD960859",
        "AliasesPipelineLogGroupB3327E8A",
    },
}
CUSTOM_STATEFUL_IDS = {
    **DEFAULT_STATEFUL_IDS,
    "AWS::Logs::LogGroup": DEFAULT_STATEFUL_IDS["AWS::Logs::LogGroup"]
    | {"RecorderLogGroup20A22CC5", "WebhookLogGroup2B53E94B"},
}


@pytest.mark.parametrize(
    ("synth_name", "expected"),
    [("default_synth", DEFAULT_STATEFUL_IDS), ("custom_synth", CUSTOM_STATEFUL_IDS)],
)
def test_stateful_resources_keep_their_logical_ids(synth_name: str, expected: dict[str, set[str]], request):
    # GIVEN a synthesized stack (defaults, or every option on)
    synth: Synth = request.getfixturevalue(synth_name)
    # WHEN we list its stateful resources by type
    found = {resource_type: set(synth.resources(resource_type)) for resource_type in STATEFUL_TYPES}
    # THEN each has the logical id the deployed stacks have: an upgrade updates them in place, never replaces them
    assert found == expected
