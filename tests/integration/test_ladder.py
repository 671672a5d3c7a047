"""The promotion ladder end to end in the sandbox: dev -> staging -> prod as three registered models of one server.

tests/integration/policies/ladder-dev.yaml declares the ladder (prod needs an approver). Versions are uploaded once
into ladder-dev; `python -m ops promote --to` puts the requests on the bus and the aliases function copies them.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from functions.domain.tags import (
    LADDER_APPROVER_TAG,
    LADDER_ENVIRONMENT_TAG,
    LADDER_SOURCE_ENVIRONMENT_TAG,
    LADDER_SOURCE_MODEL_TAG,
    LADDER_SOURCE_VERSION_TAG,
    TAG_STATUS,
)
from tests.integration.conftest import TEST_POLICIES
from tests.integration.sandboxes import alias_holder, ops, upload_with_accuracy, version_for_key

PROMOTED = "Model Version Promoted"


def promote(sandbox, version: str, to: str, *extra: str) -> int:  # type: ignore[no-untyped-def]
    return ops(sandbox, "promote", "ladder-dev", version, "--to", to, "--policies", str(TEST_POLICIES), *extra)


def versions(client, name: str) -> list:  # type: ignore[no-untyped-def]
    return sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))


def test_a_version_uploaded_once_climbs_dev_staging_prod_and_a_rollback_at_prod_leaves_staging(
    sandbox, mlflow_client, wait_quiet, sklearn_model_dir, tmp_path: Path, capsys
):
    # GIVEN a version uploaded once into the dev model, registered and passed there
    key = upload_with_accuracy(sandbox, sklearn_model_dir, tmp_path, "ladder-dev", "1", 0.9)
    wait_quiet(timeout=120)
    first = version_for_key(mlflow_client, "ladder-dev", key)
    assert alias_holder(mlflow_client, "ladder-dev", "challenger") == first

    # WHEN it is sent straight to prod THEN the command refuses it: it has not reached staging, and nothing is made
    assert promote(sandbox, first, "prod", "--approver", "alice") == 2
    assert "has not reached staging: promote it there first" in capsys.readouterr().err
    assert promote(sandbox, first, "qa") == 2
    assert "'qa' is no environment of ladder-dev's ladder (dev, staging, prod)" in capsys.readouterr().err

    # WHEN two operators promote it to staging at the same time, and one of them once more (a retry)
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(lambda _: promote(sandbox, first, "staging"), range(2))) == [0, 0]
    wait_quiet(timeout=60)
    assert promote(sandbox, first, "staging") == 0
    wait_quiet(timeout=60)
    # THEN staging holds exactly one copy, sourced from the dev version, with its lineage and challenger
    [staged] = versions(mlflow_client, "ladder-staging")
    assert staged.source == f"models:/ladder-dev/{first}"
    assert (staged.tags[LADDER_ENVIRONMENT_TAG], staged.tags[LADDER_SOURCE_ENVIRONMENT_TAG]) == ("staging", "dev")
    assert (staged.tags[LADDER_SOURCE_MODEL_TAG], staged.tags[LADDER_SOURCE_VERSION_TAG]) == ("ladder-dev", first)
    assert staged.tags[TAG_STATUS] == "passed"
    assert alias_holder(mlflow_client, "ladder-staging", "challenger") == staged.version
    [announced] = sandbox.observed_events(PROMOTED, model_name="ladder-staging")
    assert (announced["detail"]["from_environment"], announced["detail"]["to_environment"]) == ("dev", "staging")

    # WHEN prod is asked without an approver THEN it is refused; WHEN alice approves THEN champion moves in prod
    assert promote(sandbox, first, "prod") == 2
    assert "entering prod needs an approver" in capsys.readouterr().err
    assert promote(sandbox, first, "prod", "--approver", "alice") == 0
    wait_quiet(timeout=60)
    [released] = versions(mlflow_client, "ladder-prod")
    assert released.source == f"models:/ladder-staging/{staged.version}"
    assert (released.tags[LADDER_ENVIRONMENT_TAG], released.tags[LADDER_APPROVER_TAG]) == ("prod", "alice")
    assert alias_holder(mlflow_client, "ladder-prod", "champion") == released.version

    # WHEN a version that failed in dev is promoted THEN the command refuses it and staging is unchanged
    failed_key = upload_with_accuracy(sandbox, sklearn_model_dir, tmp_path, "ladder-dev", "2", 0.3)
    wait_quiet(timeout=120)
    failed = version_for_key(mlflow_client, "ladder-dev", failed_key)
    assert promote(sandbox, failed, "staging") == 2
    assert "its validation status is failed, not passed at dev" in capsys.readouterr().err
    # AND a request that bypasses the command is refused by the function: dead-lettered with its reason, nothing copied
    bypass = {
        "model_name": "ladder-dev",
        "version": failed,
        "environment": "staging",
        "requested_by": "mallory",
        "correlation_id": "ladder-bypass-1",
    }
    entry = {"Source": "registry-autopilot", "DetailType": "Environment Promotion Requested"}
    sandbox.client("events").put_events(
        Entries=[{**entry, "Detail": json.dumps(bypass), "EventBusName": sandbox.event_bus}]
    )
    wait_quiet(timeout=60)
    [dead] = [m for m in sandbox.dlq_messages("aliases") if "ladder-bypass-1" in m.body]
    assert dead.reason == "not_passed"
    assert len(versions(mlflow_client, "ladder-staging")) == 1

    # WHEN a better version climbs to prod too, and prod's champion is rolled back
    better_key = upload_with_accuracy(sandbox, sklearn_model_dir, tmp_path, "ladder-dev", "3", 0.95)
    wait_quiet(timeout=120)
    better = version_for_key(mlflow_client, "ladder-dev", better_key)
    assert promote(sandbox, better, "staging") == 0
    wait_quiet(timeout=60)
    assert promote(sandbox, better, "prod", "--approver", "alice") == 0
    wait_quiet(timeout=60)
    staged_better = alias_holder(mlflow_client, "ladder-staging", "challenger")
    assert staged_better != staged.version
    assert alias_holder(mlflow_client, "ladder-prod", "champion") != released.version
    assert ops(sandbox, "rollback", "ladder-prod", "--alias", "champion", "--by", "oncall") == 0
    wait_quiet(timeout=60)
    # THEN prod's champion is its previous holder again, and staging is left alone
    assert alias_holder(mlflow_client, "ladder-prod", "champion") == released.version
    assert alias_holder(mlflow_client, "ladder-staging", "challenger") == staged_better
    assert [len(versions(mlflow_client, m)) for m in ("ladder-staging", "ladder-prod")] == [2, 2]

    # AND `ops ladder` shows which version stands at each rung
    capsys.readouterr()
    assert ops(sandbox, "ladder", "ladder-prod", "--policies", str(TEST_POLICIES), "--json") == 0
    shown = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert shown["ladder"] == "ladder-dev"
    assert [(e["environment"], e["aliases"]) for e in shown["environments"]] == [
        ("dev", {"challenger": better}),
        ("staging", {"challenger": staged_better}),
        ("prod", {"champion": released.version}),
    ]
    assert "there as ladder-prod" in shown["environments"][1]["next"]
    assert ops(sandbox, "ladder", "ladder-dev", "--policies", str(TEST_POLICIES)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ladder-dev's ladder:"
    assert [line.split()[:3] for line in lines[1:] if not line.strip().startswith("next:")] == [
        ["dev", "ladder-dev", f"challenger=v{better}"],
        ["staging", "ladder-staging", f"challenger=v{staged_better}"],
        ["prod", "ladder-prod", f"champion=v{released.version}"],
    ]


def test_a_rung_that_re_runs_the_gate_stops_a_version_failing_there_and_admits_one_passing(
    sandbox, mlflow_client, wait_quiet, sklearn_model_dir, tmp_path: Path, capsys
):
    # GIVEN two versions that pass in dev, only one of which meets the `checked` rung's stricter gate
    keys = [
        upload_with_accuracy(sandbox, sklearn_model_dir, tmp_path, "ladder-gate", label, accuracy)
        for label, accuracy in (("1", 0.9), ("2", 0.95))
    ]
    wait_quiet(timeout=120)
    weak, strong = (version_for_key(mlflow_client, "ladder-gate", key) for key in keys)

    def to_checked(version: str) -> int:
        args = ("promote", "ladder-gate", version, "--to", "checked", "--policies", str(TEST_POLICIES))
        return ops(sandbox, *args)

    # WHEN the weaker one is promoted THEN it is copied, re-checked there, fails, and holds no alias
    assert to_checked(weak) == 0
    wait_quiet(timeout=120)
    [copy] = versions(mlflow_client, "ladder-gate-checked")
    assert (copy.tags[TAG_STATUS], copy.tags[LADDER_ENVIRONMENT_TAG]) == ("failed", "checked")
    assert alias_holder(mlflow_client, "ladder-gate-checked", "champion") is None
    # AND promoting it again is refused with the reason of its re-check
    assert to_checked(weak) == 2
    refusal = capsys.readouterr().err
    assert "failed its re-check in checked" in refusal
    assert "accuracy 0.9 is below the minimum 0.92" in refusal
    # WHEN the stronger one is promoted THEN it passes its re-check and the rung's alias moves to it
    assert to_checked(strong) == 0
    wait_quiet(timeout=120)
    passed = [v for v in versions(mlflow_client, "ladder-gate-checked") if v.tags.get(TAG_STATUS) == "passed"]
    assert [v.tags[LADDER_SOURCE_VERSION_TAG] for v in passed] == [strong]
    assert alias_holder(mlflow_client, "ladder-gate-checked", "champion") == passed[0].version
