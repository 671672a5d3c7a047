"""The private MLflow functions the project calls, pinned: an MLflow upgrade that changes one fails here first.

`functions/adapters/proof_runner.py` builds a model's environment with `mlflow.utils.virtualenv._get_or_create_virtualenv`,
the builder `mlflow.models.predict` and `mlflow models serve` use (docs/policies-and-aliases.md says why not
`predict` itself). It is private, so nothing but this test says when its call shape moves; requirements-dev.txt pins
the MLflow it was read from.
"""

from __future__ import annotations

import inspect

import mlflow.utils.virtualenv


def test_the_environment_builder_takes_the_arguments_the_proof_runner_passes() -> None:
    builder = mlflow.utils.virtualenv._get_or_create_virtualenv
    signature = inspect.signature(builder)
    # the call in proof_runner._build, argument for argument: binding raises TypeError if one is gone or renamed
    signature.bind("/model", env_root_dir="/envs", capture_output=True, env_manager="uv")
    assert signature.parameters["env_manager"].default == "uv"


def test_the_environment_builder_accepts_uv_and_virtualenv() -> None:
    # MLflow validates env_manager against its EnvManager names; the runner passes "uv" or "virtualenv"
    from mlflow.utils import env_manager

    assert {env_manager.UV, env_manager.VIRTUALENV} == {"uv", "virtualenv"}
