"""The registry port's contract, run against both of its implementations: the in-memory fake the unit tests use
(`tests/fakes.py`) and the MLflow adapter on the sandbox's real MLflow server (SQLite behind it).

Each test runs once per implementation, so the fake cannot drift from what MLflow does: where they disagree, MLflow
is right and the fake is fixed. What the domain sees is checked, never how: versions numbered from 1 per model, tags
merged, aliases moved, reads of something missing as None, writes to something missing as `Unavailable` (MLflow
answers RESOURCE_DOES_NOT_EXIST, which the adapter does not tell apart from an outage), a second version of the same
source allowed (finding it again is the pipeline's job).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from functions.adapters.registry_factory import open_registry
from functions.domain.errors import Unavailable
from functions.domain.ports import ModelInfo, ModelRegistry, VersionInfo, copy_source
from functions.domain.tags import IDENTITY_TAG, history_tag, origin_tag
from sandbox import Sandbox
from tests.fakes import FakeRegistry


@pytest.fixture(params=["fake", "mlflow"])
def registry(request: pytest.FixtureRequest) -> ModelRegistry:
    if request.param == "fake":
        return FakeRegistry()
    sandbox: Sandbox = request.getfixturevalue("sandbox")
    return open_registry(sandbox.mlflow_tracking_uri, sandbox.mlflow_tracking_uri)


@pytest.fixture
def name(model_name: str) -> str:
    """A model name no other test uses (the sandbox's registry is shared)."""
    return f"contract-{model_name}"


@pytest.fixture
def create(registry: ModelRegistry, name: str) -> Callable[..., VersionInfo]:
    def create(source: str = "s3://bucket/models/m/1", tags: dict[str, str] | None = None) -> VersionInfo:
        return registry.create_version(name, source, run_id=None, model_id=None, tags=tags or {})

    return create


def test_the_first_version_creates_the_model_and_is_read_back(registry, name, create):
    # GIVEN no model of that name
    assert registry.get_model(name) is None
    # WHEN a version is created
    created = create("s3://bucket/models/m/1", {origin_tag("key"): "models/m/1/MLmodel", IDENTITY_TAG: "i-1"})
    # THEN it is version 1 with its source and tags, the same when read back, and the model exists without aliases
    assert (created.model_name, created.version, created.source, created.run_id, created.model_id) == (
        name,
        "1",
        "s3://bucket/models/m/1",
        None,
        None,
    )
    assert created.tags == {origin_tag("key"): "models/m/1/MLmodel", IDENTITY_TAG: "i-1"}
    assert registry.get_version(name, "1") == created
    assert registry.get_model(name) == ModelInfo(name=name, aliases={}, tags={})


def test_versions_are_numbered_per_model_and_a_source_may_be_registered_twice(registry, name, create):
    # GIVEN a model with one version
    create("s3://bucket/models/m/1")
    # WHEN the same source and another one are registered
    again = create("s3://bucket/models/m/1")
    other = create("s3://bucket/models/m/2")
    # THEN each is a new version; and another model starts from 1
    assert (again.version, other.version) == ("2", "3")
    first = registry.create_version(f"{name}-b", "s3://bucket/b/1", run_id=None, model_id=None, tags={})
    assert first.version == "1"


def test_reads_of_what_does_not_exist_are_none(registry, name, create):
    # GIVEN a model with one version and no aliases
    create()
    # THEN missing models, versions, aliases, runs and logged models read as None
    assert registry.get_model(f"{name}-missing") is None
    assert registry.get_version(name, "9") is None
    assert registry.get_version(f"{name}-missing", "1") is None
    assert registry.get_alias_version(name, "champion") is None
    assert registry.get_alias_version(f"{name}-missing", "champion") is None
    assert registry.get_run(uuid.uuid4().hex) is None
    assert registry.get_logged_model(f"m-{uuid.uuid4().hex}") is None


def test_writes_to_what_does_not_exist_are_unavailable(registry, name, create):
    # GIVEN a model with one version
    create()
    # THEN writing to a version or a model that does not exist fails as the registry being unavailable
    writes = {
        "set_version_tags": lambda: registry.set_version_tags(name, "9", {"a": "b"}),
        "set_alias to a missing version": lambda: registry.set_alias(name, "champion", "9"),
        "set_alias on a missing model": lambda: registry.set_alias(f"{name}-missing", "champion", "1"),
        "set_model_tag": lambda: registry.set_model_tag(f"{name}-missing", "a", "b"),
        "transition_stage": lambda: registry.transition_stage(name, "9", "Staging"),
    }
    for what, write in writes.items():
        with pytest.raises(Unavailable) as raised:
            write()
        assert raised.value.reason == "registry_unavailable", what
    # AND deleting a tag of a missing version, or a missing tag, is no error
    registry.delete_version_tag(name, "9", "a")
    registry.delete_version_tag(name, "1", "a")


def test_version_tags_are_merged_overwritten_and_deleted(registry, name, create):
    # GIVEN a version with a tag
    create(tags={"keep": "1", "change": "old"})
    # WHEN tags are set, one overwritten, and one deleted
    registry.set_version_tags(name, "1", {"change": "new", "added": "x"})
    registry.delete_version_tag(name, "1", "keep")
    # THEN the version has exactly the result
    assert registry.get_version(name, "1").tags == {"change": "new", "added": "x"}


def test_aliases_are_set_moved_and_read_through_the_model(registry, name, create):
    # GIVEN a model with two versions
    create("s3://bucket/models/m/1")
    create("s3://bucket/models/m/2")
    # WHEN champion is set on v1, challenger on v2, then champion moves to v2
    registry.set_alias(name, "champion", "1")
    registry.set_alias(name, "challenger", "2")
    assert registry.get_alias_version(name, "champion").version == "1"
    registry.set_alias(name, "champion", "2")
    # THEN the alias reads as its new holder, and the model lists both aliases
    holder = registry.get_alias_version(name, "champion")
    assert (holder.model_name, holder.version, holder.source) == (name, "2", "s3://bucket/models/m/2")
    assert registry.get_model(name).aliases == {"champion": "2", "challenger": "2"}


def test_model_tags_are_set_and_overwritten(registry, name, create):
    # GIVEN a model
    create()
    # WHEN a model tag is set twice and another once
    registry.set_model_tag(name, history_tag("champion"), "[]")
    registry.set_model_tag(name, history_tag("champion"), '[{"version": "1"}]')
    registry.set_model_tag(name, "other", "x")
    # THEN the model has the latest values
    assert registry.get_model(name).tags == {history_tag("champion"): '[{"version": "1"}]', "other": "x"}


def test_an_earlier_version_is_found_by_its_source_newest_first(registry, name, create):
    # GIVEN two versions of one source, one of another, and the first tagged with an upload's identity
    create("s3://bucket/models/m/1", {IDENTITY_TAG: "i-1"})
    create("s3://bucket/models/m/2")
    create("s3://bucket/models/m/1")
    # THEN a search by source finds the newest version of it
    found = registry.find_version(name, ["s3://bucket/models/m/0", "s3://bucket/models/m/1"], "i-1")
    assert (found.version, found.source) == ("3", "s3://bucket/models/m/1")
    # AND on an MLflow server the identity alone finds nothing (only Unity Catalog searches by it)
    assert registry.find_version(name, ["s3://bucket/models/m/9"], "i-1") is None
    assert registry.find_version(f"{name}-missing", ["s3://bucket/models/m/1"], "i-1") is None


def test_a_stage_moves_only_an_existing_version(registry, name, create):
    # GIVEN a version; WHEN it moves to a stage; THEN that is no error (the port offers no read of stages)
    create()
    registry.transition_stage(name, "1", "Staging")


def test_a_copy_is_the_targets_next_version_with_the_sources_tags_and_is_found_by_its_source(registry, name, create):
    # GIVEN a version with tags
    create("s3://bucket/models/m/1", {IDENTITY_TAG: "i-1", "validation.status": "passed"})
    target = f"{name}-staging"
    # WHEN it is copied into a model that does not exist yet
    copied = registry.copy_version(name, "1", target)
    # THEN the target exists and the copy is its version 1, sourced `models:/<name>/1`, with the source's tags
    assert (copied.model_name, copied.version, copied.source) == (target, "1", copy_source(name, "1"))
    assert copied.tags == {IDENTITY_TAG: "i-1", "validation.status": "passed"}
    assert registry.get_version(target, "1") == copied
    # AND a search by that source finds it (how the ladder finds an earlier copy)
    assert registry.find_version(target, [copy_source(name, "1")], "").version == "1"
    # AND the port itself copies again when asked (never copying twice is the caller's job): the next version
    assert registry.copy_version(name, "1", target).version == "2"
    # AND copying a version that does not exist fails as the registry being unavailable, creating nothing
    with pytest.raises(Unavailable):
        registry.copy_version(name, "9", f"{name}-prod")
    assert registry.get_model(f"{name}-prod") is None
