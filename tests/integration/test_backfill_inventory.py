"""`python -m ops backfill --inventory` against the sandbox's moto server: the recorded S3 Inventory report
(tests/events/s3_inventory) put in a destination bucket, the objects it lists in a source bucket."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ops.__main__ import main as ops
from sandbox import Sandbox

RECORDED = Path(__file__).parents[1] / "events" / "s3_inventory"
SOURCE = "example-source-bucket"
DESTINATION = "example-inventory-destination-bucket"
MANIFEST_KEY = "Inventory/example-source-bucket/2016-11-06T21-32Z/manifest.json"
MLMODELS = (
    "models/churn/1/MLmodel",
    "models/churn/2/MLmodel",
    "mlflow/7/models/m-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/artifacts/MLmodel",
)


def test_a_dry_run_plans_from_the_inventory_and_refuses_a_data_file_that_does_not_match(
    sandbox: Sandbox, capsys
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the source bucket holding the MLmodels the report lists (no listing of it is needed), and the recorded
    # manifest and data file in the destination bucket under the keys the manifest names
    s3 = sandbox.client("s3")
    for bucket in (SOURCE, DESTINATION):
        s3.create_bucket(Bucket=bucket)
    for key in MLMODELS:
        s3.put_object(Bucket=SOURCE, Key=key, Body=b"artifact_path: model\nflavors: {}\n")
    manifest = json.loads((RECORDED / "manifest.json").read_bytes())
    (data_file,) = manifest["files"]
    s3.put_object(Bucket=DESTINATION, Key=MANIFEST_KEY, Body=(RECORDED / "manifest.json").read_bytes())
    s3.put_object(Bucket=DESTINATION, Key=data_file["key"], Body=(RECORDED / Path(data_file["key"]).name).read_bytes())
    info = {**sandbox.info(), "bucket": SOURCE, "artifact_root_prefix": "mlflow"}
    backfill = ["--sandbox", json.dumps(info), "backfill", "--dry-run", "--inventory"]

    # WHEN a dry run plans from the report
    status = ops([*backfill, f"s3://{DESTINATION}/{MANIFEST_KEY}"])

    # THEN it plans the report's current MLmodels, read with HeadObject, and sends nothing
    out = capsys.readouterr()
    assert status == 0, out.err
    assert f"backfill s3://{SOURCE}: 5 objects listed; would send 3 MLmodel(s)" in out.out
    assert "churn" in out.out
    assert "logged_model" in out.out

    # WHEN the data file in the bucket is not the one the manifest's MD5checksum describes
    s3.put_object(Bucket=DESTINATION, Key=data_file["key"], Body=b"\x1f\x8b tampered")
    status = ops([*backfill, f"s3://{DESTINATION}/{MANIFEST_KEY}"])

    # THEN the backfill stops with one line and status 2, before planning anything
    err = capsys.readouterr().err
    assert status == 2
    assert f"does not match the manifest's MD5checksum {data_file['MD5checksum']}" in err
    assert hashlib.md5(b"\x1f\x8b tampered", usedforsecurity=False).hexdigest() in err
    assert len(err.strip().splitlines()) == 1

    # WHEN the manifest does not exist THEN the same: one line, status 2
    assert ops([*backfill, f"s3://{DESTINATION}/Inventory/missing/manifest.json"]) == 2
    assert "does not exist (NoSuchKey)" in capsys.readouterr().err
