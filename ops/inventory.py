"""An S3 Inventory report as the backfill's listing: its `manifest.json` and gzipped CSV data files, parsed (pure).

The format is AWS's (Amazon S3 User Guide, "Locating your inventory list" → "Inventory manifest", and "Amazon S3
inventory list": https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory-location.html):

- `manifest.json` names `sourceBucket`, `destinationBucket` (an ARN), `version`, `creationTimestamp` (epoch ms),
  `fileFormat` (`CSV`, `ORC` or `Parquet`), `fileSchema` (for CSV, the column names, comma-separated, in the data
  files' order) and `files`: each `{"key", "size", "MD5checksum"}` of one data file in the destination bucket.
- a CSV data file is gzipped and has no header row; the `Key` column is URL-encoded ("must be decoded before you can
  use it"); `IsLatest` and `IsDeleteMarker` appear when the report lists all versions.
- the report is eventually consistent (it "might not include recently added or deleted objects"): AWS recommends a
  HeadObject before acting on an object, which the backfill does for every candidate anyway.

The S3 reads are `ops.target.read_object`; this module only checks and parses bytes.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus

from ops.target import ListedObject

MAX_MANIFEST_BYTES = 8 * 1024 * 1024
"""A manifest lists data files, not objects (a file per some millions of objects); 8 MiB is far above any real one."""

SUPPORTED_FORMAT = "CSV"
REQUIRED_COLUMNS = ("Key", "Size", "LastModifiedDate", "ETag")


class InventoryError(ValueError):
    """A manifest or data file the backfill cannot use; the message says which and why."""


@dataclass(frozen=True)
class DataFile:
    key: str
    size: int
    md5: str


@dataclass(frozen=True)
class Manifest:
    source_bucket: str
    destination_bucket: str
    """The destination bucket's name (the manifest gives its ARN): where the data files are."""
    columns: tuple[str, ...]
    files: tuple[DataFile, ...]


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key)."""
    if not uri.startswith("s3://") or "/" not in uri[len("s3://") :]:
        raise InventoryError(f"--inventory wants s3://<bucket>/<path>/manifest.json: {uri!r}")
    bucket, key = uri[len("s3://") :].split("/", 1)
    if not bucket or not key:
        raise InventoryError(f"--inventory wants s3://<bucket>/<path>/manifest.json: {uri!r}")
    return bucket, key


def parse_manifest(body: bytes, *, uri: str, bucket: str, manifest_bucket: str) -> Manifest:
    """The manifest at `uri`, checked to be a CSV inventory of `bucket` (`InventoryError` says what is not)."""
    if len(body) > MAX_MANIFEST_BYTES:
        raise InventoryError(f"{uri}: manifest is {len(body)} bytes, over the cap of {MAX_MANIFEST_BYTES}")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise InventoryError(f"{uri}: manifest is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise InventoryError(f"{uri}: manifest is not a JSON object")
    file_format = document.get("fileFormat")
    if file_format != SUPPORTED_FORMAT:
        raise InventoryError(
            f"{uri}: fileFormat {file_format!r} is not supported: only CSV inventories are read "
            "(ORC and Parquet are not; configure a CSV report for the backfill)"
        )
    source = document.get("sourceBucket")
    if source != bucket:
        raise InventoryError(f"{uri}: manifest is for bucket {source!r}, not the artifact bucket {bucket!r}")
    columns = tuple(column.strip() for column in str(document.get("fileSchema", "")).split(","))
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise InventoryError(f"{uri}: fileSchema lacks {', '.join(missing)}: {document.get('fileSchema')!r}")
    destination = str(document.get("destinationBucket") or f"arn:aws:s3:::{manifest_bucket}")
    try:
        files = tuple(
            DataFile(str(entry["key"]), int(entry["size"]), str(entry["MD5checksum"]).lower())
            for entry in document["files"]
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InventoryError(f"{uri}: files[] wants key, size and MD5checksum for each data file ({error})") from None
    return Manifest(
        source_bucket=source,
        destination_bucket=destination.removeprefix("arn:aws:s3:::"),
        columns=columns,
        files=files,
    )


def check_data_file(data_file: DataFile, body: bytes, *, bucket: str) -> None:
    """`InventoryError` unless `body` is the data file the manifest describes (its MD5)."""
    digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
    if digest != data_file.md5:
        raise InventoryError(
            f"s3://{bucket}/{data_file.key}: MD5 {digest} does not match the manifest's MD5checksum {data_file.md5}"
        )


def listed_objects(
    manifest: Manifest, body: bytes, *, data_key: str, prefixes: Sequence[str] = ()
) -> Iterator[ListedObject]:
    """The current, non-delete-marker objects of one gzipped CSV data file, under `prefixes` (all when empty)."""
    try:
        text = gzip.decompress(body).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise InventoryError(f"{data_key}: not a gzipped UTF-8 CSV data file ({error})") from None
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row:
            continue
        if len(row) != len(manifest.columns):
            raise InventoryError(
                f"{data_key}: row {number} has {len(row)} columns, fileSchema names {len(manifest.columns)}"
            )
        fields = dict(zip(manifest.columns, row, strict=True))
        if fields.get("IsLatest", "true").lower() != "true" or fields.get("IsDeleteMarker", "").lower() == "true":
            continue
        key = unquote_plus(fields["Key"])
        if prefixes and not any(key.startswith(prefix) for prefix in prefixes):
            continue
        try:
            yield ListedObject(
                key=key,
                size=int(fields["Size"]),
                etag=f'"{fields["ETag"].strip(chr(34))}"',
                last_modified=datetime.fromisoformat(fields["LastModifiedDate"].replace("Z", "+00:00")),
                version_id=None if fields.get("VersionId", "") in ("", "null") else fields["VersionId"],
            )
        except ValueError as error:
            raise InventoryError(f"{data_key}: row {number} ({key}): {error}") from None
