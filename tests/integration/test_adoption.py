"""Adopting a bucket that already holds models: preflight, notifications on, backfill, then live uploads.

The issue's "Done when", end to end in a sandbox of its own (the bucket has a history and EventBridge off when the
pipeline starts), and `--promote` against a live run of the same uploads in the session sandbox.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.domain.tags import BACKFILL_HOLD_ALIASES, BACKFILL_PROMOTE, BACKFILL_TAG, TAG_STATUS
from ops.__main__ import main as ops
from sandbox import Sandbox
from tests.integration.conftest import TEST_POLICIES
from tests.integration.sandboxes import started

pytestmark = pytest.mark.slow

HISTORY = {"adopted-churn": ("2024-01", "2024-06", "2025-02"), "adopted-fraud": ("1", "2")}
"""Models in the bucket before the pipeline exists: name -> labels (models/<name>/<label>/MLmodel)."""
REGISTERED = "Model Version Registered"


@pytest.fixture
def adopted(tmp_path: Path, sklearn_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A sandbox on a bucket already holding HISTORY's models, EventBridge notifications off; clients point at it."""
    history = tmp_path / "history"
    for name, labels in HISTORY.items():
        for label in labels:
            shutil.copytree(sklearn_model_dir, history / "models" / name / label)
    sandbox = started(
        Sandbox(
            workdir=tmp_path / "sandbox",
            existing_objects=history,
            bucket_event_bridge=False,
            function_settings={"policies_dir": str(TEST_POLICIES)},
            handle_signals=False,
        ),
        "the adopted-bucket sandbox",
    )
    for variable, value in sandbox.client_environment().items():
        monkeypatch.setenv(variable, value)
    try:
        yield sandbox
    finally:
        sandbox.stop()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    status = ops(list(argv))
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def _versions(sandbox: Sandbox, name: str) -> list:  # type: ignore[type-arg]
    client = sandbox.mlflow_client()
    return [client.get_model_version(name, v.version) for v in client.search_model_versions(f"name='{name}'")]


def test_an_adopted_bucket_is_preflighted_backfilled_once_validated_then_runs_live(
    adopted: Sandbox, sklearn_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = sorted(f"models/{name}/{label}/MLmodel" for name, labels in HISTORY.items() for label in labels)
    backfill = ["--sandbox", json.dumps(adopted.info()), "backfill", "--rate", "50"]

    # GIVEN the pipeline started on a bucket holding five models, with EventBridge notifications off
    adopted.wait_until_quiet(timeout=30)
    assert not adopted.bucket_event_bridge_on()
    assert all(_versions(adopted, name) == [] for name in HISTORY)

    # WHEN the preflight checks the bucket
    status, lines, _ = _run(capsys, "preflight", "--bucket", adopted.bucket)
    # THEN it says EventBridge is off, with the command that turns it on, and exits 2
    assert status == 2
    (missing,) = (line for line in lines if line.startswith("MISSING"))
    assert missing.startswith("MISSING EventBridge notifications: ")
    fix = shlex.split(missing.split("Bucket owner runs: ", 1)[1])
    assert fix[:3] == ["aws", "s3api", "put-bucket-notification-configuration"]
    assert fix[fix.index("--bucket") + 1] == adopted.bucket

    # WHEN the bucket's owner runs that command (its boto3 equivalent) and the preflight runs again
    configuration = json.loads(fix[fix.index("--notification-configuration") + 1])
    adopted.client("s3").put_bucket_notification_configuration(
        Bucket=adopted.bucket, NotificationConfiguration=configuration, SkipDestinationValidation=True
    )
    status, lines, _ = _run(capsys, "preflight", "--bucket", adopted.bucket)
    # THEN the bucket is ready, and turning notifications on announced none of the models already there
    assert (status, lines) == (0, [f"bucket {adopted.bucket}: ready"])
    assert adopted.bucket_event_bridge_on()
    adopted.wait_until_quiet(timeout=30)
    assert adopted.observed_events(REGISTERED) == []

    # WHEN a dry run of the backfill is asked for
    status, lines, _ = _run(capsys, *backfill, "--dry-run")
    # THEN it counts what it would send per model name and layout, and sends nothing
    assert status == 0
    assert f"would send {len(existing)} MLmodel(s)" in lines[0]
    counts = {tuple(line.split()) for line in lines[1:] if line.startswith("  ")}
    assert counts == {(name, "plain", str(len(labels))) for name, labels in HISTORY.items()}
    assert "already registered: 0" in lines
    adopted.wait_until_quiet(timeout=30)
    assert adopted.observed_events(REGISTERED) == []
    assert all(_versions(adopted, name) == [] for name in HISTORY)

    # WHEN the backfill runs
    status, lines, _ = _run(capsys, *backfill)
    assert status == 0
    assert lines[-1].startswith(f"backfill: sent {len(existing)}, already registered 0")
    adopted.wait_until_quiet(timeout=120)

    # THEN every existing model is registered exactly once, validated (passed), held, and no alias moved
    registered = adopted.observed_events(REGISTERED)
    assert sorted(event["detail"]["artifact"]["key"] for event in registered) == existing
    versions = [version for name in HISTORY for version in _versions(adopted, name)]
    assert sorted(version.tags["origin.key"] for version in versions) == existing
    assert {(version.tags.get(TAG_STATUS), version.tags.get(BACKFILL_TAG)) for version in versions} == {
        ("passed", BACKFILL_HOLD_ALIASES)
    }
    client = adopted.mlflow_client()
    assert {name: client.get_registered_model(name).aliases for name in HISTORY} == dict.fromkeys(HISTORY, {})
    assert adopted.observed_events("Model Alias Moved") == []
    assert all(adopted.dlq_messages(route) == [] for route in adopted.wiring)

    # WHEN the backfill runs a second time
    status, lines, _ = _run(capsys, *backfill)
    # THEN it registers nothing: all five are registered already
    assert status == 0
    assert lines[-1].startswith(f"backfill: sent 0, already registered {len(existing)}")
    adopted.wait_until_quiet(timeout=60)
    assert len(adopted.observed_events(REGISTERED)) == len(existing)
    assert sum(len(_versions(adopted, name)) for name in HISTORY) == len(existing)

    # WHEN a team uploads a new model after that
    adopted.upload_dir(sklearn_model_dir, "models/adopted-churn/2025-09/")
    # THEN the live path registers it (no backfill mark), validates it, and its default policy moves challenger
    (live,) = adopted.wait_for_events(REGISTERED, model_name="adopted-churn", count=4, timeout=60)[3:]
    assert live["detail"]["artifact"]["key"] == "models/adopted-churn/2025-09/MLmodel"
    adopted.wait_until_quiet(timeout=60)
    version = client.get_model_version("adopted-churn", str(live["detail"]["version"]))
    assert version.tags.get(TAG_STATUS) == "passed"
    assert BACKFILL_TAG not in version.tags
    assert client.get_registered_model("adopted-churn").aliases == {"challenger": str(live["detail"]["version"])}
    assert sum(len(_versions(adopted, name)) for name in HISTORY) == len(existing) + 1


UPLOADS = (("d", 0.80), ("c", 0.95), ("b", 0.90), ("a", 0.955))
"""(label, accuracy) in upload order: neither the keys' order nor the accuracies' is the order of upload. With the
policy's 0.01 minimum improvement the live order leaves champion on `c`; the keys' order would leave it on `a`."""


def _upload(
    sandbox: Sandbox, model_dir: Path, work: Path, name: str, label: str, accuracy: float, notify: bool
) -> None:
    copy = work / f"{name}-{label}"
    shutil.copytree(model_dir, copy)
    (copy / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    sandbox.upload_dir(copy, f"models/{name}/{label}/", notify=notify)


def _champion(sandbox: Sandbox, name: str) -> tuple[str, str]:
    """(version, label of its upload) holding champion."""
    client = sandbox.mlflow_client()
    version = client.get_registered_model(name).aliases["champion"]
    return version, client.get_model_version(name, version).tags["origin.key"].split("/")[2]


def test_backfill_with_promote_leaves_champion_where_the_live_pipeline_leaves_it(
    sandbox: Sandbox, sklearn_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN four versions of one model uploaded one by one with notifications off (LastModified a second apart) ...
    for label, accuracy in UPLOADS:
        _upload(sandbox, sklearn_model_dir, tmp_path, "backfill-promote", label, accuracy, notify=False)
        time.sleep(1.1)  # LastModified as listed has a resolution of one second
    # ... and the same four uploaded live, in the same order, under a model with the same policy
    for label, accuracy in UPLOADS:
        _upload(sandbox, sklearn_model_dir, tmp_path, "live-promote", label, accuracy, notify=True)
        sandbox.wait_until_quiet(timeout=60)
    assert sandbox.mlflow_client().search_model_versions("name='backfill-promote'") == []

    # WHEN the backfill runs with --promote
    target = ["--sandbox", json.dumps(sandbox.info()), "backfill", "--prefix", "models/backfill-promote/"]
    assert ops([*target, "--promote", "--rate", "1"]) == 0
    assert "aliases may move (--promote)" in capsys.readouterr().out
    sandbox.wait_until_quiet(timeout=120)

    # THEN it sent them oldest upload first: the versions are numbered in upload order, as the live ones are
    events = sandbox.observed_events(REGISTERED, model_name="backfill-promote")
    order = [event["detail"]["artifact"]["key"].split("/")[2] for event in events]
    assert order == [label for label, _ in UPLOADS]
    for event in events:
        version = sandbox.mlflow_client().get_model_version("backfill-promote", str(event["detail"]["version"]))
        assert (version.tags.get(TAG_STATUS), version.tags.get(BACKFILL_TAG)) == ("passed", BACKFILL_PROMOTE)
    # AND champion ends on the version the live run left it on
    assert _champion(sandbox, "backfill-promote") == _champion(sandbox, "live-promote") == ("2", "c")
