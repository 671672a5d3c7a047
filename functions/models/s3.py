"""S3 `Object Created` events as EventBridge delivers them (and as the local emulator does).

Built on Powertools' `EventBridgeModel` envelope, with an object model that accepts both the real
`etag` and the emulator's `eTag`, and treats the emulator's literal "null" version id as absent.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator


class S3Object(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

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
    name: str = Field(min_length=1)


class S3ObjectDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    bucket: S3Bucket
    object: S3Object
    reason: str | None = None


class S3ObjectEvent(EventBridgeModel):
    """An `Object Created` (or `Object Deleted`) event of the artifact bucket."""

    detail: S3ObjectDetail
