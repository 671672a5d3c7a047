"""Alias moves end to end in the sandbox: concurrency, rollback, approval, refusals, loading @champion.

The session sandbox uses tests/integration/policies/ (alias-race: challenger always, champion auto;
alias-approval: champion needs an approver; alias-failed: accuracy must reach 0.9).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import mlflow.pyfunc
import numpy as np
from sklearn.datasets import load_iris

from functions.domain.tags import TAG_STATUS, pending_tag
from tests.integration.sandboxes import alias_holder, ops, upload_with_accuracy, version_for_key

MOVED = "Model Alias Moved"


def test_ten_concurrent_versions_end_with_the_best_as_champion_and_rollback_restores_the_previous(
    sandbox, mlflow_client, wait_quiet, sklearn_model_dir, tmp_path, capsys
):
    # GIVEN ten versions of one model with different accuracies, uploaded at the same time
    accuracies = [0.71, 0.93, 0.64, 0.88, 0.97, 0.79, 0.91, 0.95, 0.83, 0.69]
    with ThreadPoolExecutor(max_workers=10) as pool:
        keys = list(
            pool.map(
                lambda item: upload_with_accuracy(
                    sandbox, sklearn_model_dir, tmp_path, "alias-race", str(item[0]), item[1]
                ),
                enumerate(accuracies),
            )
        )
    # WHEN every one of them is registered, validated and considered for the aliases
    wait_quiet(timeout=180)
    # THEN the champion is the most accurate, whatever order the verdicts arrived in
    best = version_for_key(mlflow_client, "alias-race", keys[accuracies.index(max(accuracies))])
    assert alias_holder(mlflow_client, "alias-race", "champion") == best
    assert alias_holder(mlflow_client, "alias-race", "challenger") == best
    # AND every move is in the history and was announced, ending with the best version
    assert ops(sandbox, "history", "alias-race", "--alias", "champion", "--json") == 0
    history = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert history[-1]["version"] == best
    moved = [
        e["detail"]
        for e in sandbox.observed_events(MOVED, model_name="alias-race")
        if e["detail"]["alias"] == "champion"
    ]
    assert [m["version"] for m in moved] == [entry["version"] for entry in history]

    # WHEN a better version arrives, then the operator rolls the champion back
    newest_key = upload_with_accuracy(sandbox, sklearn_model_dir, tmp_path, "alias-race", "new", 0.99)
    wait_quiet(timeout=90)
    newest = version_for_key(mlflow_client, "alias-race", newest_key)
    assert alias_holder(mlflow_client, "alias-race", "champion") == newest
    previous, best = best, newest

    assert ops(sandbox, "rollback", "alias-race", "--alias", "champion", "--by", "oncall") == 0
    wait_quiet(timeout=60)
    # THEN the previous champion holds it again, and the rollback is recorded
    assert alias_holder(mlflow_client, "alias-race", "champion") == previous
    assert ops(sandbox, "history", "alias-race", "--alias", "champion", "--json") == 0
    last = json.loads(capsys.readouterr().out.splitlines()[-1])[-1]
    assert (last["version"], last["previous"], last["actor"], last["reason"]) == (
        previous,
        best,
        "oncall",
        "rolled back by oncall",
    )

    # AND models:/<name>@champion loads the champion and predicts what the trained model predicts
    features, _ = load_iris(return_X_y=True)
    loaded = mlflow.pyfunc.load_model("models:/alias-race@champion")
    expected = mlflow.pyfunc.load_model(str(sklearn_model_dir)).predict(features[:5])
    assert np.array_equal(loaded.predict(features[:5]), expected)


def test_approval_required_moves_nothing_until_approved(
    sandbox, mlflow_client, wait_quiet, sklearn_model_dir, tmp_path
):
    # GIVEN a model whose champion needs an approver
    key = upload_with_accuracy(sandbox, sklearn_model_dir, tmp_path, "alias-approval", "1", 0.9)
    wait_quiet(timeout=90)
    version = version_for_key(mlflow_client, "alias-approval", key)
    # THEN challenger moved, champion did not, and the version is marked pending with an event
    assert alias_holder(mlflow_client, "alias-approval", "challenger") == version
    assert alias_holder(mlflow_client, "alias-approval", "champion") is None
    tags = mlflow_client.get_model_version("alias-approval", version).tags
    assert pending_tag("champion") in tags
    [pending] = sandbox.observed_events("Promotion Pending", model_name="alias-approval")
    assert pending["detail"]["alias"] == "champion"
    # WHEN an approver promotes it
    assert ops(sandbox, "promote", "alias-approval", version, "--alias", "champion", "--approver", "alice") == 0
    wait_quiet(timeout=60)
    # THEN champion moves, naming the approver, and the pending mark is gone
    assert alias_holder(mlflow_client, "alias-approval", "champion") == version
    [moved] = [
        e["detail"]
        for e in sandbox.observed_events(MOVED, model_name="alias-approval")
        if e["detail"]["alias"] == "champion"
    ]
    assert (moved["actor"], moved["reason"]) == ("alice", "promoted by alice")
    assert pending_tag("champion") not in mlflow_client.get_model_version("alias-approval", version).tags


def test_promoting_a_failed_version_is_refused_with_a_clear_message(
    sandbox, mlflow_client, wait_quiet, sklearn_model_dir, tmp_path, capsys
):
    # GIVEN a version that failed its validation
    key = upload_with_accuracy(sandbox, sklearn_model_dir, tmp_path, "alias-failed", "1", 0.5)
    wait_quiet(timeout=90)
    version = version_for_key(mlflow_client, "alias-failed", key)
    assert mlflow_client.get_model_version("alias-failed", version).tags[TAG_STATUS] == "failed"
    assert alias_holder(mlflow_client, "alias-failed", "challenger") is None
    # WHEN the operator tries to promote it
    code = ops(sandbox, "promote", "alias-failed", version, "--alias", "champion", "--approver", "bob")
    # THEN the command refuses, saying why
    assert code == 2
    assert f"cannot promote alias-failed v{version}: its validation status is failed, not passed" in (
        capsys.readouterr().err
    )
    # AND a request that bypasses the command is refused by the function: dead-lettered with the reason
    detail = {
        "model_name": "alias-failed",
        "version": version,
        "alias": "champion",
        "approver": "bob",
        "correlation_id": "bypass-1",
    }
    sandbox.client("events").put_events(
        Entries=[
            {
                "Source": "registry-autopilot",
                "DetailType": "Promotion Requested",
                "Detail": json.dumps(detail),
                "EventBusName": sandbox.event_bus,
            }
        ]
    )
    wait_quiet(timeout=60)
    [dead] = [m for m in sandbox.dlq_messages("aliases") if "bypass-1" in m.body]
    assert dead.reason == "not_passed"
    assert "its validation status is failed" in dead.error
    assert alias_holder(mlflow_client, "alias-failed", "champion") is None
