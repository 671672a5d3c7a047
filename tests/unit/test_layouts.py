from __future__ import annotations

import pytest

from functions.domain.errors import Rejected
from functions.domain.layouts import (
    LoggedModelArtifact,
    PlainUpload,
    RunArtifact,
    check_key,
    check_model_name,
    classify,
    skip_reason,
)

MODEL_ID = "m-6c73e1d770c246b5a23915943ef5a86e"
RUN_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("models/churn/2026-11-20/MLmodel", PlainUpload("churn", "models/churn/2026-11-20")),
        ("models/churn/a/b/c/MLmodel", PlainUpload("churn", "models/churn/a/b/c")),
        (
            f"mlflow/3/models/{MODEL_ID}/artifacts/MLmodel",
            LoggedModelArtifact(MODEL_ID, "3", f"mlflow/3/models/{MODEL_ID}/artifacts"),
        ),
        (
            f"mlflow/models/{MODEL_ID}/artifacts/MLmodel",
            LoggedModelArtifact(MODEL_ID, None, f"mlflow/models/{MODEL_ID}/artifacts"),
        ),
        (
            f"mlflow/7/{RUN_ID}/artifacts/model/MLmodel",
            RunArtifact(RUN_ID, "7", "model", f"mlflow/7/{RUN_ID}/artifacts/model"),
        ),
        (f"mlflow/{RUN_ID}/artifacts/a/b/MLmodel", RunArtifact(RUN_ID, None, "a/b", f"mlflow/{RUN_ID}/artifacts/a/b")),
        # MLflow Workspaces: <root>/workspaces/<workspace>/<experiment_id>/...
        (
            f"mlflow/workspaces/team-a/3/models/{MODEL_ID}/artifacts/MLmodel",
            LoggedModelArtifact(MODEL_ID, "3", f"mlflow/workspaces/team-a/3/models/{MODEL_ID}/artifacts", "team-a"),
        ),
        (
            f"mlflow/workspaces/team-a/models/{MODEL_ID}/artifacts/MLmodel",
            LoggedModelArtifact(MODEL_ID, None, f"mlflow/workspaces/team-a/models/{MODEL_ID}/artifacts", "team-a"),
        ),
        (
            f"mlflow/workspaces/default/7/{RUN_ID}/artifacts/model/MLmodel",
            RunArtifact(RUN_ID, "7", "model", f"mlflow/workspaces/default/7/{RUN_ID}/artifacts/model", "default"),
        ),
        (
            f"mlflow/workspaces/f2/{RUN_ID}/artifacts/a/b/MLmodel",
            RunArtifact(RUN_ID, None, "a/b", f"mlflow/workspaces/f2/{RUN_ID}/artifacts/a/b", "f2"),
        ),
    ],
)
def test_classify_recognises_each_layout(key, expected):
    # GIVEN a key in one of the three layouts
    # WHEN it is classified
    location = classify(key, artifact_root_prefix="mlflow")
    # THEN the location names the model directory and what identifies the model
    assert location == expected


@pytest.mark.parametrize(
    "key",
    [
        "models/churn/MLmodel",  # no <anything> level under the model name
        "models/churn/1/MLmodel.bak",
        "models/churn/1/model.pkl",
        "other/churn/1/MLmodel",
        f"mlflow/3/models/{MODEL_ID}/MLmodel",  # not under artifacts/
        "mlflow/3/models/m-short/artifacts/MLmodel",
        "mlflow/3/not-a-run-id/artifacts/model/MLmodel",
        f"elsewhere/3/{RUN_ID}/artifacts/model/MLmodel",
        f"other/workspaces/team-a/3/{RUN_ID}/artifacts/model/MLmodel",  # a workspace layout outside the root
    ],
)
def test_classify_returns_none_for_anything_else(key):
    # GIVEN a key that is no model location
    # WHEN it is classified
    # THEN it is not recognised (the caller skips it)
    assert classify(key, artifact_root_prefix="mlflow") is None


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        # A workspace name MLflow refuses (upper case, underscore, one character, a leading or trailing hyphen).
        (f"mlflow/workspaces/Team_A/3/{RUN_ID}/artifacts/model/MLmodel", "unmapped_workspace_layout"),
        (f"mlflow/workspaces/a/3/{RUN_ID}/artifacts/model/MLmodel", "unmapped_workspace_layout"),
        (f"mlflow/workspaces/-team/3/{RUN_ID}/artifacts/model/MLmodel", "unmapped_workspace_layout"),
        (f"mlflow/workspaces/{'a' * 64}/3/{RUN_ID}/artifacts/model/MLmodel", "unmapped_workspace_layout"),
        # `workspaces` is never an experiment, nor a workspace (MLflow reserves the name).
        (f"mlflow/workspaces/{RUN_ID}/artifacts/model/MLmodel", "unmapped_workspace_layout"),
        (f"mlflow/workspaces/workspaces/3/{RUN_ID}/artifacts/model/MLmodel", "unmapped_workspace_layout"),
        # Under a workspace, but in no MLflow layout.
        ("mlflow/workspaces/team-a/3/notes/MLmodel", "unmapped_workspace_layout"),
        ("mlflow/3/notes/MLmodel", "not_a_model_location"),
        ("datasets/x/MLmodel", "not_a_model_location"),
    ],
)
def test_keys_that_map_to_no_layout_are_skipped_with_their_reason(key, reason):
    # GIVEN a key no layout maps (under MLflow's workspaces folder or elsewhere)
    # WHEN it is classified
    # THEN there is no location, and the skip reason tells a workspace key that MLflow's layout does not explain
    assert classify(key, artifact_root_prefix="mlflow") is None
    assert skip_reason(key, artifact_root_prefix="mlflow") == reason


def test_workspace_layout_under_a_custom_artifact_root():
    # GIVEN a deployment whose artifact root prefix is "team/a" and a workspace key under it
    key = f"team/a/workspaces/fraud/5/{RUN_ID}/artifacts/model/MLmodel"
    # WHEN it is classified
    location = classify(key, artifact_root_prefix="team/a")
    # THEN the workspace and the experiment are both read
    assert isinstance(location, RunArtifact)
    assert (location.workspace, location.experiment_id) == ("fraud", "5")


def test_classify_honours_a_custom_artifact_root():
    # GIVEN a deployment whose artifact root prefix is "team/a"
    key = f"team/a/5/{RUN_ID}/artifacts/model/MLmodel"
    # WHEN a run-artifact key under that root is classified
    # THEN it is recognised, and the default root is not
    assert isinstance(classify(key, artifact_root_prefix="team/a"), RunArtifact)
    assert classify(key, artifact_root_prefix="mlflow") is None


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "empty"),
        ("models/../secrets/1/MLmodel", r"'\.\.'"),
        ("models/./churn/1/MLmodel", r"'\.'"),
        ("models//churn/1/MLmodel", "empty"),
        ("/models/churn/1/MLmodel", "empty"),
        ("models/churn\n/1/MLmodel", "control"),
        ("models/churn\x00/1/MLmodel", "control"),
        ("models/chu\u200brn/1/MLmodel", "control, format"),  # zero-width space
        ("models/churn\u202e/1/MLmodel", "control, format"),  # right-to-left override
        ("models/modèle/1/MLmodel", "non-ASCII"),
        ("models/churn'--/1/MLmodel", "letters, digits"),
        ("models/churn model/1/MLmodel", "letters, digits"),
        ("models/churn%2F/1/MLmodel", "letters, digits"),
        ("models/" + "a" * 1100 + "/1/MLmodel", "longer than 1024"),
    ],
)
def test_check_key_refuses_hostile_keys(key, message):
    # GIVEN a key with a path trick, a control character, odd unicode or an unsafe character
    # WHEN it is checked
    # THEN it is rejected with a reason that says what is wrong
    with pytest.raises(Rejected, match=message) as caught:
        check_key(key)
    assert caught.value.reason == "invalid_key"


def test_check_key_accepts_mlflow_keys():
    # GIVEN keys MLflow writes
    keys = [f"mlflow/3/models/{MODEL_ID}/artifacts/MLmodel", "models/churn-v2/run_1.2/MLmodel"]
    # WHEN they are checked
    # THEN nothing is raised
    for key in keys:
        check_key(key)


@pytest.mark.parametrize("name", ["churn", "Churn_2", "main.ml.churn", "a" * 256, "9lives"])
def test_check_model_name_accepts_plain_names(name):
    assert check_model_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "1 to 256"),
        ("a" * 10_000, "1 to 256"),
        ("-churn", "start with a letter or digit"),
        ("churn model", "only letters"),
        ("churn'", "only letters"),
        ("modèle", "only letters"),
    ],
)
def test_check_model_name_refuses_the_rest(name, message):
    with pytest.raises(Rejected, match=message):
        check_model_name(name)
