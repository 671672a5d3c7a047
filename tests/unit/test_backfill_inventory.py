"""`python -m ops backfill --inventory`: an S3 Inventory report (recorded, AWS's format) parsed into the listing."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.backfill import listing_prefixes, select
from ops.inventory import (
    MAX_MANIFEST_BYTES,
    InventoryError,
    check_data_file,
    listed_objects,
    parse_manifest,
    split_s3_uri,
)
from ops.target import ListedObject

RECORDED = Path(__file__).parents[1] / "events" / "s3_inventory"
MANIFEST = RECORDED / "manifest.json"
DATA = RECORDED / "939c6d46-85a9-4ba8-87bd-9db705a579ce.csv.gz"
BUCKET = "example-source-bucket"
URI = "s3://example-inventory-destination-bucket/Inventory/example-source-bucket/2016-11-06T21-32Z/manifest.json"


def manifest_of(**changes: object) -> bytes:
    document = json.loads(MANIFEST.read_bytes())
    document.update(changes)
    return json.dumps(document).encode()


def parse(body: bytes, bucket: str = BUCKET):  # type: ignore[no-untyped-def]
    return parse_manifest(body, uri=URI, bucket=bucket, manifest_bucket="example-inventory-destination-bucket")


def test_the_recorded_report_becomes_the_listing_of_current_objects_under_the_model_locations():
    # GIVEN the recorded manifest and its data file
    manifest = parse(MANIFEST.read_bytes())
    (data_file,) = manifest.files
    body = DATA.read_bytes()

    # WHEN the data file is checked against the manifest and parsed for the model locations
    check_data_file(data_file, body, bucket=manifest.destination_bucket)
    listed = list(listed_objects(manifest, body, data_key=data_file.key, prefixes=listing_prefixes(None, "mlflow")))

    # THEN the destination is the bucket of the manifest's ARN, and each current, non-delete-marker row under
    # models/ or mlflow/ is a ListedObject with its decoded key, size, quoted ETag, LastModified and version id
    assert manifest.destination_bucket == "example-inventory-destination-bucket"
    assert listed[0] == ListedObject(
        key="models/churn/1/MLmodel",
        size=512,
        etag='"4e5e5c37a5b3ce9c8a1e8c2b7e5f0a11"',
        last_modified=datetime(2016, 11, 5, 10, 12, 31, tzinfo=UTC),
        version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    )
    assert [obj.key for obj in listed] == [
        "models/churn/1/MLmodel",
        "models/churn/1/model.pkl",
        "models/churn/1/my notes.txt",
        "models/churn/2/MLmodel",
        "mlflow/7/models/m-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/artifacts/MLmodel",
    ]
    # (the noncurrent models/churn/2 version, the fraud delete marker and its noncurrent version, logs/: left out)
    assert {obj.key: obj.size for obj in listed}["models/churn/2/MLmodel"] == 530

    # WHEN the planner selects from it THEN it sees the same candidates a ListObjectsV2 listing would give
    selection = select(listed, artifact_root_prefix="mlflow")
    assert [(c.key, c.layout) for c in selection.candidates] == [
        ("models/churn/1/MLmodel", "plain"),
        ("models/churn/2/MLmodel", "plain"),
        ("mlflow/7/models/m-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/artifacts/MLmodel", "logged_model"),
    ]


def test_a_null_version_id_is_no_version_id():
    # GIVEN a report row of an object written before versioning, version id "null"
    manifest = parse(MANIFEST.read_bytes())
    row = '"example-source-bucket","models/a/1/MLmodel","null","true","false","1","2016-11-05T10:00:00.000Z","ab"'
    body = gzip.compress((row + "," * 10 + "\n").encode())

    # WHEN it is parsed THEN it has no version id
    (obj,) = listed_objects(manifest, body, data_key="d.csv.gz")
    assert obj.version_id is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<ListBucketResult/>", "manifest is not JSON"),
        (manifest_of(fileFormat="Parquet"), "fileFormat 'Parquet' is not supported: only CSV"),
        (manifest_of(fileFormat="ORC"), "fileFormat 'ORC' is not supported: only CSV"),
        (manifest_of(sourceBucket="someone-elses-bucket"), "is for bucket 'someone-elses-bucket', not the artifact"),
        (manifest_of(fileSchema="Bucket, Size"), "fileSchema lacks Key, LastModifiedDate, ETag"),
        (manifest_of(files=[{"key": "x.csv.gz"}]), "files[] wants key, size and MD5checksum"),
        (b" " * (MAX_MANIFEST_BYTES + 1), "over the cap of"),
    ],
)
def test_a_manifest_the_backfill_cannot_use_is_refused_with_one_line(body: bytes, message: str):
    # GIVEN a manifest that is not JSON, not CSV, for another bucket, incomplete or too big
    # WHEN it is parsed THEN it is refused, naming the manifest and why
    with pytest.raises(InventoryError) as refusal:
        parse(body)
    assert message in str(refusal.value)
    assert URI in str(refusal.value)
    assert "\n" not in str(refusal.value)


def test_a_data_file_whose_md5_differs_from_the_manifest_is_refused():
    # GIVEN the recorded data file with one byte changed
    (data_file,) = parse(MANIFEST.read_bytes()).files
    body = bytearray(DATA.read_bytes())
    body[-1] ^= 0xFF

    # WHEN it is checked THEN it is refused with both checksums
    with pytest.raises(InventoryError) as refusal:
        check_data_file(data_file, bytes(body), bucket="dest")
    assert f"does not match the manifest's MD5checksum {data_file.md5}" in str(refusal.value)
    assert hashlib.md5(bytes(body), usedforsecurity=False).hexdigest() in str(refusal.value)


def test_a_row_that_does_not_fit_the_schema_and_a_file_that_is_not_gzip_are_refused():
    # GIVEN a row of three columns and a data file that is not gzipped
    manifest = parse(MANIFEST.read_bytes())
    short = gzip.compress(b'"b","k","v"\n')

    # WHEN each is parsed THEN each is refused, naming the file
    with pytest.raises(InventoryError, match="d.csv.gz: row 1 has 3 columns, fileSchema names 18"):
        list(listed_objects(manifest, short, data_key="d.csv.gz"))
    with pytest.raises(InventoryError, match="d.csv.gz: not a gzipped UTF-8 CSV"):
        list(listed_objects(manifest, b"plain text", data_key="d.csv.gz"))


def test_the_inventory_uri_must_name_a_bucket_and_a_key():
    # GIVEN URIs with and without a bucket and key WHEN split THEN the good one splits, the others are refused
    assert split_s3_uri("s3://dest/inv/manifest.json") == ("dest", "inv/manifest.json")
    for bad in ("dest/inv/manifest.json", "s3://dest", "s3:///manifest.json"):
        with pytest.raises(InventoryError, match="--inventory wants s3://"):
            split_s3_uri(bad)
