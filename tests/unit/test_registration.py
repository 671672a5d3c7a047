from __future__ import annotations

from datetime import timedelta

import pytest

from functions.domain.errors import NotReady, Rejected, Unavailable
from functions.domain.ports import LoggedModelInfo, RunInfo, VersionInfo
from functions.domain.registration import UploadedObject
from functions.domain.tags import (
    DEFAULT_MODEL_NAME_TAG,
    IDENTITY_TAG,
    MODEL_VERSIONS_TAG,
    REGISTERED_BY,
    REGISTERED_BY_TAG,
    WORKSPACE_TAG,
    origin_tag,
)
from functions.models.events import ModelVersionRegistered
from tests.builders import BUCKET, MODEL_ID, NOW, RUN_ID
from tests.builders import RegistrationWorld as World


def test_plain_upload_is_registered_with_origin_tags_and_an_event():
    # GIVEN a complete plain upload
    world = World()
    upload = world.upload_model("models/churn/2026-11-20")
    # WHEN it is registered
    outcome = world.registrar.register(upload)
    # THEN one version exists, sourced from the model directory and tagged with its origin
    assert (outcome.status, outcome.model_name, outcome.version) == ("registered", "churn", "1")
    [version] = world.registry.versions
    assert version.source == f"s3://{BUCKET}/models/churn/2026-11-20"
    assert version.tags[origin_tag("key")] == upload.key
    assert version.tags[origin_tag("etag")] == "etag-1"
    assert version.tags[origin_tag("version_id")] == "v1"
    assert version.tags[IDENTITY_TAG] == upload.identity
    assert version.tags[REGISTERED_BY_TAG] == REGISTERED_BY
    # AND a Model Version Registered event carries the contract fields
    [event] = world.events.published
    assert isinstance(event, ModelVersionRegistered)
    assert (event.model_name, event.version, event.source_uri) == ("churn", "1", version.source)
    assert event.correlation_id == upload.correlation_id
    assert event.artifact is not None
    assert event.artifact.key == upload.key
    assert event.already_registered is False


def test_the_same_upload_twice_gives_one_version():
    # GIVEN an upload that was registered already (the idempotency record expired, say)
    world = World()
    upload = world.upload_model("models/churn/1")
    world.registrar.register(upload)
    # WHEN it is registered again
    outcome = world.registrar.register(upload)
    # THEN the registry lookup by source finds it: still one version, and the event is re-emitted
    assert outcome.status == "already_registered"
    assert len(world.registry.versions) == 1
    assert [e.already_registered for e in world.events.published] == [False, True]


def test_version_registered_from_a_replayed_event_is_tagged_with_the_replay():
    # GIVEN a complete upload whose event EventBridge replayed from an archive
    world = World()
    upload = world.upload_model("models/churn/1")
    replayed = UploadedObject(**{**upload.__dict__, "replay_name": "RegistryAutopilot-artifacts-20261120T120000Z"})
    # WHEN it is registered
    world.registrar.register(replayed)
    # THEN the version carries the replay's name next to its origin, and so does the event
    [version] = world.registry.versions
    assert version.tags[origin_tag("replay_name")] == "RegistryAutopilot-artifacts-20261120T120000Z"
    assert world.events.published[0].replay_name == "RegistryAutopilot-artifacts-20261120T120000Z"


def test_version_registered_from_a_live_event_has_no_replay_tag():
    # GIVEN a complete upload delivered live
    world = World()
    upload = world.upload_model("models/churn/1")
    # WHEN it is registered
    world.registrar.register(upload)
    # THEN no replay tag is set
    [version] = world.registry.versions
    assert origin_tag("replay_name") not in version.tags


def test_correlation_id_is_stable_per_upload_and_differs_between_uploads():
    first = UploadedObject(bucket=BUCKET, key="models/a/1/MLmodel", version_id="v1")
    again = UploadedObject(bucket=BUCKET, key="models/a/1/MLmodel", version_id="v1", replay_name="r")
    other = UploadedObject(bucket=BUCKET, key="models/a/1/MLmodel", version_id="v2")
    assert first.correlation_id == again.correlation_id
    assert first.correlation_id != other.correlation_id


def test_incomplete_plain_upload_is_not_ready():
    # GIVEN an MLmodel whose weights are not uploaded yet
    world = World()
    upload = world.upload_model("models/churn/1", files=("conda.yaml",))
    # WHEN it is registered
    # THEN it is deferred, naming the missing files, and nothing is registered
    with pytest.raises(NotReady, match="model.skops, python_env.yaml"):
        world.registrar.register(upload)
    assert world.registry.versions == []
    assert world.events.published == []


def test_upload_incomplete_for_too_long_is_rejected():
    # GIVEN an incomplete upload older than the pending limit
    world = World(max_pending_seconds=600)
    upload = world.upload_model("models/churn/1", files=())
    stale = UploadedObject(**{**upload.__dict__, "uploaded_at": NOW - timedelta(hours=1)})
    # WHEN it is registered
    # THEN it is rejected (dead-lettered) with the reason
    with pytest.raises(
        Rejected, match=r"still incomplete more than 600 s after it was written \(2026-11-20T11:00:00\+00:00\)"
    ):
        world.registrar.register(stale)


def test_logged_model_waits_for_ready_then_registers_linked():
    # GIVEN a logged model MLflow still reports as PENDING
    world = World()
    model_dir = f"mlflow/1/models/{MODEL_ID}/artifacts"
    upload = world.upload_model(model_dir, files=())
    world.registry.runs[RUN_ID] = RunInfo(RUN_ID, "1", {DEFAULT_MODEL_NAME_TAG: "fraud"})
    world.registry.logged_models[MODEL_ID] = LoggedModelInfo(MODEL_ID, "1", "PENDING", {}, RUN_ID)
    # WHEN it is registered
    # THEN it is deferred
    with pytest.raises(NotReady, match="PENDING"):
        world.registrar.register(upload)
    # WHEN MLflow marks it READY and the message comes back
    world.registry.logged_models[MODEL_ID] = LoggedModelInfo(MODEL_ID, "1", "READY", {}, RUN_ID)
    outcome = world.registrar.register(upload)
    # THEN it is registered under the run's tag, linked to the run and the logged model
    assert (outcome.status, outcome.model_name) == ("registered", "fraud")
    assert world.registry.create_calls == [
        {"name": "fraud", "source": f"s3://{BUCKET}/{model_dir}", "run_id": RUN_ID, "model_id": MODEL_ID}
    ]


def test_failed_logged_model_is_rejected():
    world = World()
    upload = world.upload_model(f"mlflow/1/models/{MODEL_ID}/artifacts")
    world.registry.logged_models[MODEL_ID] = LoggedModelInfo(MODEL_ID, "1", "FAILED", {DEFAULT_MODEL_NAME_TAG: "x"})
    with pytest.raises(Rejected, match="FAILED"):
        world.registrar.register(upload)


def test_logged_model_tag_wins_over_run_tag_and_mapping():
    world = World(experiment_model_names={"1": "from-mapping"})
    upload = world.upload_model(f"mlflow/1/models/{MODEL_ID}/artifacts")
    world.registry.runs[RUN_ID] = RunInfo(RUN_ID, "1", {DEFAULT_MODEL_NAME_TAG: "from-run"})
    world.registry.logged_models[MODEL_ID] = LoggedModelInfo(
        MODEL_ID, "1", "READY", {DEFAULT_MODEL_NAME_TAG: "from-logged-model"}, RUN_ID
    )
    assert world.registrar.register(upload).model_name == "from-logged-model"


@pytest.mark.parametrize(
    ("model_dir", "workspace"),
    [(f"mlflow/7/{RUN_ID}/artifacts/model", None), (f"mlflow/workspaces/team-a/7/{RUN_ID}/artifacts/model", "team-a")],
)
def test_run_artifact_named_by_experiment_mapping(model_dir, workspace):
    # GIVEN run artifacts of a run without the name tag, in an experiment the configuration maps (outside any MLflow
    # workspace, or under one)
    world = World(experiment_model_names={"7": "credit"})
    upload = world.upload_model(model_dir)
    world.registry.runs[RUN_ID] = RunInfo(RUN_ID, "7", {})
    # WHEN registered
    outcome = world.registrar.register(upload)
    # THEN the mapping names the model, the run is linked, the source is the model directory, and a workspace is
    # recorded on the version (no tag outside one)
    assert (outcome.status, outcome.model_name) == ("registered", "credit")
    assert world.registry.create_calls[0]["run_id"] == RUN_ID
    [version] = world.registry.versions
    assert version.source == f"s3://{BUCKET}/{model_dir}"
    assert version.tags.get(WORKSPACE_TAG) == workspace


def test_unknown_run_is_recorded_as_a_tag_not_linked():
    # GIVEN run artifacts whose run the tracking server does not know (copied from elsewhere)
    world = World(experiment_model_names={"7": "credit"})
    upload = world.upload_model(f"mlflow/7/{RUN_ID}/artifacts/model")
    # WHEN registered
    world.registrar.register(upload)
    # THEN the version is not linked to the unknown run, but the run id is kept as a tag
    assert world.registry.create_calls[0]["run_id"] is None
    assert world.registry.versions[0].tags[origin_tag("run_id")] == RUN_ID


def test_key_under_the_workspaces_folder_in_no_layout_is_skipped_with_its_reason():
    # GIVEN an MLmodel under MLflow's workspaces folder with a workspace name MLflow refuses
    world = World()
    key = f"mlflow/workspaces/Team_A/7/{RUN_ID}/artifacts/model/MLmodel"
    # WHEN it is registered
    outcome = world.registrar.register(UploadedObject(bucket=BUCKET, key=key, size=3))
    # THEN it is skipped, under its own reason (the handler counts RegistrationSkipped by reason), and nothing exists
    assert (outcome.status, outcome.reason) == ("skipped", "unmapped_workspace_layout")
    assert world.registry.versions == []


def test_mlflow_layout_without_a_name_waits_a_moment_then_is_skipped():
    # GIVEN run artifacts with no name tag, no log_model registration and no mapping
    world = World(name_grace_seconds=60)
    young = world.upload_model(f"mlflow/7/{RUN_ID}/artifacts/model")
    world.registry.runs[RUN_ID] = RunInfo(RUN_ID, "7", {})
    # WHEN the upload is seconds old
    # THEN it is deferred: log_model(registered_model_name=...) may be about to register it
    with pytest.raises(NotReady, match="no registered model name yet"):
        world.registrar.register(young)
    # WHEN it is older than the grace period
    old = UploadedObject(**{**young.__dict__, "uploaded_at": NOW - timedelta(seconds=61)})
    outcome = world.registrar.register(old)
    # THEN it is skipped, not registered
    assert (outcome.status, outcome.reason) == ("skipped", "no_model_name")
    assert world.registry.versions == []


def test_version_registered_by_log_model_is_not_duplicated():
    # GIVEN log_model(registered_model_name=...) already registered the logged model (source models:/<id>)
    world = World()
    upload = world.upload_model(f"mlflow/1/models/{MODEL_ID}/artifacts")
    world.registry.logged_models[MODEL_ID] = LoggedModelInfo(
        MODEL_ID, "1", "READY", {DEFAULT_MODEL_NAME_TAG: "fraud"}, None
    )
    world.registry.versions.append(VersionInfo("fraud", "1", f"models:/{MODEL_ID}"))
    # WHEN the upload's event is handled
    outcome = world.registrar.register(upload)
    # THEN no second version is created and the existing one is announced
    assert (outcome.status, outcome.version) == ("already_registered", "1")
    assert world.registry.create_calls == []
    assert world.events.published[0].already_registered is True


def test_log_model_registration_names_the_model_when_no_tag_does():
    # GIVEN a logged model that log_model(registered_model_name="fraud") registered, with no name tag
    world = World()
    upload = world.upload_model(f"mlflow/1/models/{MODEL_ID}/artifacts")
    versions_tag = '[{"name": "fraud", "version": 1}, {"name": "fraud", "version": "1"}]'
    world.registry.logged_models[MODEL_ID] = LoggedModelInfo(
        MODEL_ID, "1", "READY", {MODEL_VERSIONS_TAG: versions_tag}, None
    )
    world.registry.versions.append(VersionInfo("fraud", "1", f"models:/{MODEL_ID}"))
    # WHEN the upload's event is handled
    outcome = world.registrar.register(upload)
    # THEN the existing version is found under that name, and nothing is created
    assert (outcome.status, outcome.model_name, outcome.version) == ("already_registered", "fraud", "1")
    assert world.registry.create_calls == []


@pytest.mark.parametrize("tag", ["not json", '{"name": "x"}', "[1, 2]", "[]"])
def test_a_malformed_model_versions_tag_is_ignored(tag):
    world = World(name_grace_seconds=0)
    upload = world.upload_model(f"mlflow/1/models/{MODEL_ID}/artifacts")
    world.registry.logged_models[MODEL_ID] = LoggedModelInfo(MODEL_ID, "1", "READY", {MODEL_VERSIONS_TAG: tag})
    assert world.registrar.register(upload).reason == "no_model_name"


@pytest.mark.parametrize(
    ("change", "reason", "message"),
    [
        ({"bucket": "someone-elses"}, "foreign_bucket", "not 'artifact-bucket'"),
        ({"key": "models/../etc/1/MLmodel"}, "invalid_key", r"'\.\.'"),
        ({"size": 0}, "malformed_mlmodel", "zero-byte"),
        ({"size": 5_000_000}, "mlmodel_too_large", "cap is"),
    ],
)
def test_bad_input_is_rejected_with_its_reason(change, reason, message):
    world = World()
    upload = world.upload_model("models/churn/1")
    bad = UploadedObject(**{**upload.__dict__, **change})
    with pytest.raises(Rejected, match=message) as caught:
        world.registrar.register(bad)
    assert caught.value.reason == reason
    assert world.registry.versions == []


def test_mlmodel_larger_than_the_cap_is_rejected_even_when_the_event_understates_it():
    world = World(mlmodel_max_bytes=100)
    upload = world.upload_model("models/churn/1", mlmodel=b"flavors: {f: {}}\n" + b"#" * 500)
    understated = UploadedObject(**{**upload.__dict__, "size": 10})
    with pytest.raises(Rejected, match="larger than the cap"):
        world.registrar.register(understated)


def test_invalid_model_name_in_a_plain_upload_is_rejected():
    world = World()
    upload = world.upload_model("models/-bad/1")
    with pytest.raises(Rejected, match="start with a letter or digit"):
        world.registrar.register(upload)


def test_key_that_is_no_model_location_is_skipped():
    world = World()
    outcome = world.registrar.register(UploadedObject(bucket=BUCKET, key="datasets/x/MLmodel", size=3))
    assert (outcome.status, outcome.reason) == ("skipped", "not_a_model_location")


def test_object_gone_before_reading_is_skipped():
    world = World()
    outcome = world.registrar.register(UploadedObject(bucket=BUCKET, key="models/churn/1/MLmodel", size=3))
    assert (outcome.status, outcome.reason) == ("skipped", "object_gone")


def test_registry_outage_propagates_as_unavailable():
    world = World()
    upload = world.upload_model("models/churn/1")
    world.registry.down = True
    with pytest.raises(Unavailable, match="MLflow is down"):
        world.registrar.register(upload)


def test_payload_round_trip_keeps_the_upload():
    upload = UploadedObject(BUCKET, "models/a/1/MLmodel", "e", "v", 10, NOW, "replay-1")
    assert UploadedObject.from_payload(upload.as_payload()) == upload
