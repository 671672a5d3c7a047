"""Registration against a registry that behaves like Unity Catalog (tests/fakes.py: FakeRegistry(unity_catalog=True)):
versions are found again by their identity tag although the registry rewrites their source, and what UC would refuse
is refused first, with a clear reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.domain.errors import Rejected
from functions.domain.registration import Registrar, RegistrationConfig, UploadedObject
from functions.domain.tags import DEFAULT_MODEL_NAME_TAG
from tests.conftest import EVENTS
from tests.fakes import FakeArtifactStore, FakeEventPublisher, FakeRegistry

BUCKET = "artifact-bucket"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SIGNED = (EVENTS / "sklearn_MLmodel.yaml").read_bytes()
UNSIGNED = b"flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
INPUTS_ONLY = SIGNED.replace(b"signature:", b"signature_removed:") + b"signature:\n  inputs: '[]'\n"


def uc_world() -> tuple[Registrar, FakeRegistry, FakeArtifactStore, FakeEventPublisher]:
    registry, store, events = FakeRegistry(unity_catalog=True), FakeArtifactStore(), FakeEventPublisher()
    registrar = Registrar(
        RegistrationConfig(bucket=BUCKET, artifact_root_prefix="mlflow", model_name_tag=DEFAULT_MODEL_NAME_TAG),
        registry=registry,
        artifacts=store,
        events=events,
        now=lambda: NOW,
    )
    return registrar, registry, store, events


def upload(store: FakeArtifactStore, model_dir: str, mlmodel: bytes = SIGNED) -> UploadedObject:
    store.put(BUCKET, f"{model_dir}/MLmodel", mlmodel)
    for name in ("model.skops", "conda.yaml", "python_env.yaml", "requirements.txt"):
        store.put(BUCKET, f"{model_dir}/{name}")
    return UploadedObject(
        bucket=BUCKET,
        key=f"{model_dir}/MLmodel",
        etag="e1",
        version_id="v1",
        size=len(mlmodel),
        uploaded_at=NOW - timedelta(seconds=5),
    )


def test_a_late_redelivery_finds_the_copied_version_by_its_identity():
    # GIVEN a signed upload registered in UC, which keeps the version under its own storage location
    registrar, registry, store, events = uc_world()
    obj = upload(store, "models/main.ml.churn/1")
    first = registrar.register(obj)
    assert registry.versions[0].source.startswith("dbfs:/uc/")

    # WHEN the same upload is delivered again after the idempotency record expired
    again = registrar.register(obj)

    # THEN no second version: the lookup passed the upload's identity and found the version by its tag
    assert (first.status, again.status) == ("registered", "already_registered")
    assert len(registry.versions) == 1
    assert registry.find_calls[-1]["identity"] == obj.identity
    assert [e.already_registered for e in events.published] == [False, True]


@pytest.mark.parametrize("name", ["churn", "ml.churn", "a.b.c.d"])
def test_names_that_are_not_three_level_are_refused_for_unity_catalog(name: str):
    # GIVEN a plain upload whose model name is not catalog.schema.model
    registrar, registry, store, _ = uc_world()
    obj = upload(store, f"models/{name}/1")

    # WHEN it is registered
    # THEN it is refused (dead-lettered) with the reason, before UC is called
    with pytest.raises(Rejected, match=r"needs catalog\.schema\.model names") as refused:
        registrar.register(obj)
    assert refused.value.reason == "invalid_model_name"
    assert registry.create_calls == []


@pytest.mark.parametrize("mlmodel", [UNSIGNED, INPUTS_ONLY])
def test_models_without_a_full_signature_are_refused_for_unity_catalog(mlmodel: bytes):
    # GIVEN a complete upload whose MLmodel has no signature, or one without outputs
    registrar, registry, store, _ = uc_world()
    obj = upload(store, "models/main.ml.churn/1", mlmodel)

    # WHEN it is registered
    # THEN it is refused with a reason saying what to do, and nothing is created
    with pytest.raises(Rejected, match=r"signature with inputs and outputs") as refused:
        registrar.register(obj)
    assert refused.value.reason == "missing_signature"
    assert registry.create_calls == []


def test_other_registries_accept_two_level_names_and_unsigned_models():
    # GIVEN an MLflow server registry (no UC requirements) and an unsigned upload under a dotted name
    registry, store, events = FakeRegistry(), FakeArtifactStore(), FakeEventPublisher()
    registrar = Registrar(
        RegistrationConfig(bucket=BUCKET, artifact_root_prefix="mlflow", model_name_tag=DEFAULT_MODEL_NAME_TAG),
        registry=registry,
        artifacts=store,
        events=events,
        now=lambda: NOW,
    )
    obj = upload(store, "models/team.churn/1", UNSIGNED)

    # WHEN it is registered
    outcome = registrar.register(obj)

    # THEN it is registered as before
    assert (outcome.status, outcome.model_name) == ("registered", "team.churn")
