"""The two event buses and what they archive.

- The account's `default` bus, where S3 delivers the bucket's events. It is imported, not owned; the stack adds
  an archive of this bucket's S3 events only, so a lost or mishandled upload can be replayed.
- The project bus, where the functions publish (`source: registry-autopilot`), with an archive of every project
  event.
- A bucket in another account (`forwarded=True`): its S3 events come to the project bus through that account's
  forwarder (`stacks.forwarder_stack`), so they are archived there, with the same pattern, and the default bus gets
  no archive (none of the bucket's events arrive on it).
Archive patterns come from `functions.routing`, like the rules', so the sandbox archives the same events.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from constructs import Construct

from functions.routing import Bus, project_archive_pattern, s3_archive_pattern

_PATTERN_FIELDS = {
    "account": "account",
    "detail": "detail",
    "detail-type": "detail_type",
    "id": "id",
    "region": "region",
    "resources": "resources",
    "source": "source",
    "time": "time",
    "version": "version",
}


def to_event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """EventBridge's JSON pattern (as `functions.routing` writes it) -> CDK's EventPattern, field for field."""
    unknown = set(pattern) - set(_PATTERN_FIELDS)
    if unknown:
        raise ValueError(f"event pattern fields CDK's EventPattern cannot express: {', '.join(sorted(unknown))}")
    return events.EventPattern(**{_PATTERN_FIELDS[name]: value for name, value in pattern.items()})


class EventBuses(Construct):
    """`default_bus` (imported) and `project_bus` (owned), each with its archive."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project_bus_name: str,
        bucket_name: str,
        archive_retention_days: int,
        forwarded: bool = False,
    ):
        super().__init__(scope, construct_id)
        # 0 days = keep forever, as EventBridge reads RetentionDays=0.
        self._retention = Duration.days(archive_retention_days) if archive_retention_days else None
        self.default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        self.project_bus = events.EventBus(self, "ProjectBus", event_bus_name=project_bus_name)
        self.artifact_events_archive = self._without_empty_kms_key(
            self._build_forwarded_events_archive(bucket_name)
            if forwarded
            else self._build_default_bus_archive(bucket_name)
        )
        """The archive of the bucket's S3 events: on the default bus, or on the project bus when they are forwarded."""
        self.default_bus_archive = self.artifact_events_archive  # its name before buckets in other accounts
        self.project_bus_archive = self._without_empty_kms_key(self._build_project_bus_archive())

    @staticmethod
    def _without_empty_kms_key(archive: events.Archive) -> events.Archive:
        """CDK writes `KmsKeyIdentifier: ""` for an archive without a customer managed key (aws/aws-cdk#37847);
        EventBridge reads no property as "an AWS-owned key", so the empty string is removed, not passed on."""
        cfn_archive = archive.node.default_child
        if cfn_archive.kms_key_identifier == "":
            cfn_archive.add_property_deletion_override("KmsKeyIdentifier")
        return archive

    def bus(self, which: Bus) -> events.IEventBus:
        return {Bus.DEFAULT: self.default_bus, Bus.PROJECT: self.project_bus}[which]

    def _build_default_bus_archive(self, bucket_name: str) -> events.Archive:
        return events.Archive(
            self,
            "ArtifactEventsArchive",
            source_event_bus=self.default_bus,
            description="S3 events of the registry-autopilot artifact bucket (for replay)",
            event_pattern=to_event_pattern(s3_archive_pattern(bucket_name)),
            retention=self._retention,
        )

    def _build_forwarded_events_archive(self, bucket_name: str) -> events.Archive:
        return self.project_bus.archive(
            "ForwardedArtifactEventsArchive",
            description="S3 events of the registry-autopilot artifact bucket, forwarded from its account (for replay)",
            event_pattern=to_event_pattern(s3_archive_pattern(bucket_name)),
            retention=self._retention,
        )

    def _build_project_bus_archive(self) -> events.Archive:
        return self.project_bus.archive(
            "ProjectEventsArchive",
            description="Every event registry-autopilot emits (for replay)",
            event_pattern=to_event_pattern(project_archive_pattern()),
            retention=self._retention,
        )
