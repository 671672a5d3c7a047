"""`python -m ops backfill` against the sandbox: models already in the bucket, uploaded with notifications off."""

from __future__ import annotations

import json
from pathlib import Path

from functions.domain.tags import BACKFILL_HOLD_ALIASES, BACKFILL_TAG, TAG_STATUS
from ops.__main__ import main as ops
from sandbox import Sandbox

MODEL = "backfill-held"
"""Its policy (tests/integration/policies/backfill-held.yaml) gives champion to every passed version."""


def test_backfill_registers_each_existing_model_once_validated_and_moves_no_alias(
    sandbox: Sandbox, sklearn_model_dir: Path, mlflow_client, wait_quiet, capsys
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN two models already in the bucket, uploaded while its EventBridge notifications were off
    for label in ("1", "2"):
        sandbox.upload_dir(sklearn_model_dir, f"models/{MODEL}/{label}/", notify=False)
    target = ["--sandbox", json.dumps(sandbox.info()), "backfill", "--prefix", f"models/{MODEL}/", "--rate", "20"]
    wait_quiet(timeout=60)
    assert mlflow_client.search_model_versions(f"name='{MODEL}'") == []

    # WHEN a dry run is asked for first
    assert ops([*target, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    # THEN it says what it would send, per model and layout, and sends nothing
    assert "would send 2 MLmodel(s)" in dry
    assert f"{MODEL}" in dry
    assert "plain" in dry
    wait_quiet(timeout=30)
    assert mlflow_client.search_model_versions(f"name='{MODEL}'") == []

    # WHEN the backfill runs
    assert ops(target) == 0
    assert "backfill: sent 2, already registered 0" in capsys.readouterr().out
    wait_quiet(timeout=120)

    # THEN each model is registered once, validated, marked as held, and no alias moved
    versions = mlflow_client.search_model_versions(f"name='{MODEL}'")
    assert sorted(v.tags.get("origin.key") for v in versions) == [
        f"models/{MODEL}/1/MLmodel",
        f"models/{MODEL}/2/MLmodel",
    ]
    for version in versions:
        full = mlflow_client.get_model_version(MODEL, version.version)
        assert full.tags.get(TAG_STATUS) == "passed"
        assert full.tags.get(BACKFILL_TAG) == BACKFILL_HOLD_ALIASES
    assert mlflow_client.get_registered_model(MODEL).aliases == {}
    assert [d for d in sandbox.dlq_messages("register") if d.key and d.key.startswith(f"models/{MODEL}/")] == []

    # WHEN it runs again
    assert ops(target) == 0

    # THEN it sends nothing: both are registered already, and nothing new appears
    assert "backfill: sent 0, already registered 2" in capsys.readouterr().out
    wait_quiet(timeout=60)
    assert len(mlflow_client.search_model_versions(f"name='{MODEL}'")) == 2


def test_backfill_refuses_bad_input_with_one_line_and_status_2(sandbox: Sandbox, capsys) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a prefix outside the model locations, and a bucket that does not exist
    info = sandbox.info()
    outside = ["--sandbox", json.dumps(info), "backfill", "--prefix", "logs/"]
    missing = ["--sandbox", json.dumps({**info, "bucket": "no-such-bucket-backfill"}), "backfill"]

    # WHEN a backfill is asked for on each THEN each ends with one clear line and status 2
    assert ops(outside) == 2
    assert "outside the model locations" in capsys.readouterr().err
    assert ops(missing) == 2
    assert "'no-such-bucket-backfill' does not exist" in capsys.readouterr().err


def test_the_summary_counts_the_records_it_sent_that_were_dead_lettered(
    sandbox: Sandbox, sklearn_model_dir: Path, tmp_path: Path, model_name: str, wait_quiet, capsys
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN two models already in the bucket, one of them with an MLmodel the register route refuses (not YAML)
    sandbox.upload_dir(sklearn_model_dir, f"models/{model_name}/good/", notify=False)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: [unclosed\n")
    sandbox.upload_dir(broken, f"models/{model_name}/broken/", notify=False)
    wait_quiet(timeout=60)
    target = ["--sandbox", json.dumps(sandbox.info()), "backfill", "--prefix", f"models/{model_name}/", "--rate", "20"]

    # WHEN the backfill runs and waits for the register queue to empty before its summary
    assert ops([*target, "--settle", "60"]) == 0

    # THEN the summary says one of the two it sent was dead-lettered, and why
    summary = capsys.readouterr().out
    assert "backfill: sent 2, already registered 0" in summary
    assert "dead-lettered 1 (malformed_mlmodel 1)" in summary
    # AND the letter is still in the dead-letter queue, for `ops redrive` once the model is fixed
    letters = [d for d in sandbox.dlq_messages("register") if d.key == f"models/{model_name}/broken/MLmodel"]
    assert [letter.reason for letter in letters] == ["malformed_mlmodel"]
