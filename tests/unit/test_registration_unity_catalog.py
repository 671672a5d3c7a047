"""Registration against a registry that behaves like Unity Catalog (tests/fakes.py: FakeRegistry(unity_catalog=True)):
versions are found again by their identity tag although the registry rewrites their source, and what UC would refuse
is refused first, with a clear reason."""

from __future__ import annotations

import pytest

from functions.domain.errors import Rejected
from tests.builders import MLMODEL, RegistrationWorld

SIGNED = MLMODEL
UNSIGNED = b"flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
INPUTS_ONLY = SIGNED.replace(b"signature:", b"signature_removed:") + b"signature:\n  inputs: '[]'\n"


def test_a_late_redelivery_finds_the_copied_version_by_its_identity():
    # GIVEN a signed upload registered in UC, which keeps the version under its own storage location
    world = RegistrationWorld(unity_catalog=True)
    registrar, registry, events = world.registrar, world.registry, world.events
    obj = world.upload_model("models/main.ml.churn/1")
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
    world = RegistrationWorld(unity_catalog=True)
    registrar, registry = world.registrar, world.registry
    obj = world.upload_model(f"models/{name}/1")

    # WHEN it is registered
    # THEN it is refused (dead-lettered) with the reason, before UC is called
    with pytest.raises(Rejected, match=r"needs catalog\.schema\.model names") as refused:
        registrar.register(obj)
    assert refused.value.reason == "invalid_model_name"
    assert registry.create_calls == []


@pytest.mark.parametrize("mlmodel", [UNSIGNED, INPUTS_ONLY])
def test_models_without_a_full_signature_are_refused_for_unity_catalog(mlmodel: bytes):
    # GIVEN a complete upload whose MLmodel has no signature, or one without outputs
    world = RegistrationWorld(unity_catalog=True)
    registrar, registry = world.registrar, world.registry
    obj = world.upload_model("models/main.ml.churn/1", mlmodel=mlmodel)

    # WHEN it is registered
    # THEN it is refused with a reason saying what to do, and nothing is created
    with pytest.raises(Rejected, match=r"signature with inputs and outputs") as refused:
        registrar.register(obj)
    assert refused.value.reason == "missing_signature"
    assert registry.create_calls == []


def test_other_registries_accept_two_level_names_and_unsigned_models():
    # GIVEN an MLflow server registry (no UC requirements) and an unsigned upload under a dotted name
    world = RegistrationWorld()
    registrar = world.registrar
    obj = world.upload_model("models/team.churn/1", mlmodel=UNSIGNED)

    # WHEN it is registered
    outcome = registrar.register(obj)

    # THEN it is registered as before
    assert (outcome.status, outcome.model_name) == ("registered", "team.churn")
