"""S3 `Object Created` events as EventBridge delivers them (and as the local emulator does).

Built on Powertools' `EventBridgeModel` envelope, with an object model that accepts both the real
`etag` and the emulator's `eTag`, and treats the emulator's literal "null" version id as absent.

Fields this project does not know are ignored at every level (`extra="ignore"`, said explicitly so that no later
default turns them into errors): S3 adds fields over time (`detail.event-version`, `detail.bucket.aws-generated-tags`
in the newer examples of https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html), and an event that
fails to parse is dead-lettered. `version-id` is absent for writes to an unversioned bucket (see
`tests/events/s3_shapes/`, from Powertools' and AWS's example events).
"""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator


class S3Object(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    key: str = Field(min_length=1)
    size: int | None = Field(default=None, ge=0)
    etag: str = Field(default="", validation_alias=AliasChoices("etag", "eTag"))
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = None

    @field_validator("version_id")
    @classmethod
    def _null_version(cls, value: str | None) -> str | None:
        return None if value in (None, "", "null") else value


class S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)


class S3ObjectDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    bucket: S3Bucket
    object: S3Object
    reason: str | None = None
    backfill: Literal["hold_aliases", "promote"] | None = None
    """Set by `python -m ops backfill` (never by S3): whether the version's verdict may move aliases
    (`functions.domain.tags.BACKFILL_TAG`)."""


class S3ObjectEvent(EventBridgeModel):
    """An `Object Created` (or `Object Deleted`) event of the artifact bucket."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    detail: S3ObjectDetail
