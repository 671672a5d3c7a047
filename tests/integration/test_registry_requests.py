"""How many HTTP requests each registry operation costs, against the real MLflow server.

The adapter talks to the sandbox's MLflow server through a counting proxy, so every request it makes is counted and
nothing else is. Each routine operation must be one request: MLflow 3's `MlflowClient` would add a
`registered-models/get` to most of them (its prompt check), which the adapter avoids; an MLflow upgrade that brings
such a request back fails here rather than quietly doubling the pipeline's load on the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from mlflow import MlflowClient

from functions.adapters.mlflow_registry import MlflowRegistry
from functions.domain.errors import Rejected
from functions.domain.tags import PROMPT_TAG
from reliability.proxy import CountingProxy
from sandbox import Sandbox


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[CountingProxy]:
    counting = CountingProxy(sandbox.mlflow_port).start()
    yield counting
    counting.stop()


def requests_of(proxy: CountingProxy, operation: Callable[[], object]) -> int:
    before = proxy.requests
    operation()
    return proxy.requests - before


def test_each_registry_operation_is_one_request(proxy: CountingProxy, model_name: str):
    # GIVEN the adapter on a client whose every request goes through the counting proxy, and a model with a version
    registry = MlflowRegistry(MlflowClient(tracking_uri=proxy.url, registry_uri=proxy.url))
    source = f"s3://bucket/models/{model_name}/1"
    registry.create_version(model_name, source, run_id=None, model_id=None, tags={})

    # WHEN each operation the routes make runs once
    counts = {
        "find_version": requests_of(proxy, lambda: registry.find_version(model_name, [source], "identity")),
        "create_version": requests_of(
            proxy,
            lambda: registry.create_version(model_name, f"{source}-2", run_id=None, model_id=None, tags={"a": "b"}),
        ),
        "get_version": requests_of(proxy, lambda: registry.get_version(model_name, "1")),
        "set_version_tags (2 tags)": requests_of(
            proxy, lambda: registry.set_version_tags(model_name, "1", {"t1": "x", "t2": "y"})
        ),
        "set_alias": requests_of(proxy, lambda: registry.set_alias(model_name, "champion", "1")),
        "get_alias_version": requests_of(proxy, lambda: registry.get_alias_version(model_name, "champion")),
        "get_model": requests_of(proxy, lambda: registry.get_model(model_name)),
        "set_model_tag": requests_of(proxy, lambda: registry.set_model_tag(model_name, "history", "[]")),
        "delete_version_tag": requests_of(proxy, lambda: registry.delete_version_tag(model_name, "1", "t1")),
    }

    # THEN each is one request (a version tag each); and they did what they say
    assert counts == {
        "find_version": 1,
        "create_version": 1,
        "get_version": 1,
        "set_version_tags (2 tags)": 2,
        "set_alias": 1,
        "get_alias_version": 1,
        "get_model": 1,
        "set_model_tag": 1,
        "delete_version_tag": 1,
    }
    model = registry.get_model(model_name)
    assert model is not None
    assert (model.aliases, model.tags) == ({"champion": "1"}, {"history": "[]"})
    assert registry.get_version(model_name, "1").tags == {"t2": "y"}


def test_a_prompt_is_refused_where_the_registered_model_is_read(mlflow_client: MlflowClient, model_name: str):
    # GIVEN a registered model that MLflow marks as a prompt (as `mlflow.genai.register_prompt` does)
    mlflow_client.create_registered_model(model_name)
    mlflow_client._get_registry_client().set_registered_model_tag(model_name, PROMPT_TAG, "true")
    registry = MlflowRegistry(mlflow_client)

    # WHEN the aliases route reads it THEN it is refused, by name
    with pytest.raises(Rejected, match=rf"{model_name} is an MLflow prompt, not a model") as refused:
        registry.get_model(model_name)
    assert refused.value.reason == "registry_refused"
