"""The artifact bucket behind the `ArtifactStore` port."""

from __future__ import annotations

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from functions.adapters import aws
from functions.domain.ports import ArtifactStore, ObjectMissing, ObjectTooLarge

_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
DEPENDENCY = "artifact_store"


class S3ArtifactStore(ArtifactStore):
    def __init__(self, client: BaseClient | None = None) -> None:
        self._s3 = client or aws.client("s3")

    def read(self, bucket: str, key: str, *, version_id: str | None, max_bytes: int) -> bytes:
        request = {"Bucket": bucket, "Key": key, "Range": f"bytes=0-{max_bytes}"}
        if version_id and version_id != "null":
            request["VersionId"] = version_id
        try:
            response = self._s3.get_object(**request)
            content = response["Body"].read(max_bytes + 1)
        except ClientError as error:
            if aws.error_code(error) in _MISSING:
                raise ObjectMissing(key) from error
            if aws.error_code(error) == "InvalidRange":  # a zero-byte object
                return b""
            raise aws.dependency_failure(DEPENDENCY, "S3 GetObject", error) from error
        except BotoCoreError as error:  # also a body whose stream broke off: botocore raises it while reading
            raise aws.dependency_failure(DEPENDENCY, "S3 GetObject", error) from error
        if len(content) > max_bytes:
            raise ObjectTooLarge(key)
        return content

    def list_keys(self, bucket: str, prefix: str) -> set[str]:
        keys: set[str] = set()
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys.update(item["Key"] for item in page.get("Contents", []))
        except (ClientError, BotoCoreError) as error:
            raise aws.dependency_failure(DEPENDENCY, "S3 ListObjectsV2", error) from error
        return keys
