"""The host-side bundler: pip for Lambda's platform, the functions package, nothing the runtime already has."""

from __future__ import annotations

import re
from pathlib import Path

from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.bundling import LocalPythonBundler, content_hash, prune_site_packages
from stacks.config import RegistryConfig
from stacks.constants import FUNCTIONS_DIR, FUNCTIONS_REQUIREMENTS, LAMBDA_PYTHON_VERSION, LAMBDA_RUNTIME
from stacks.constructs.function_code import DependencyLayout
from stacks.registry_stack import RegistryAutopilotStack
from tests.infrastructure.conftest import cdk_json_context


def test_pip_targets_lambdas_python_and_arm64_with_wheels_only(tmp_path: Path):
    # GIVEN the dependency bundler the stack uses
    bundler = LocalPythonBundler(requirements=FUNCTIONS_REQUIREMENTS)

    # WHEN we look at the pip command it would run
    command = bundler.pip_command(tmp_path)

    # THEN it installs functions/requirements.txt for CPython 3.14 on manylinux aarch64, wheels only, no byte-code
    assert LAMBDA_RUNTIME.name == f"python{LAMBDA_PYTHON_VERSION}"
    assert command[command.index("--requirement") + 1] == str(FUNCTIONS_REQUIREMENTS)
    assert command[command.index("--target") + 1] == str(tmp_path)
    assert command[command.index("--python-version") + 1] == LAMBDA_PYTHON_VERSION
    assert command[command.index("--implementation") + 1] == "cp"
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms[0] == "manylinux2014_aarch64"
    assert all(p.endswith("_aarch64") for p in platforms)
    assert {"--only-binary=:all:", "--no-compile"} <= set(command)


def test_copying_the_package_leaves_out_caches_and_tests(tmp_path: Path):
    # GIVEN a code-only bundler for the functions package
    bundler = LocalPythonBundler(packages=[FUNCTIONS_DIR])

    # WHEN it bundles into an empty directory
    assert bundler.try_bundle(str(tmp_path), None) is True

    # THEN the package sits at the asset root (handler `functions.handlers...`) without caches or tests
    assert (tmp_path / "functions" / "__init__.py").is_file()
    assert (tmp_path / "functions" / "routing.py").is_file()
    assert not list(tmp_path.rglob("__pycache__"))
    assert not list(tmp_path.rglob("*.pyc"))
    assert not list(tmp_path.rglob("tests"))


def test_dependency_hash_changes_with_the_target_python_not_with_the_code():
    # GIVEN two dependency bundlers that differ only in the target Python
    current = LocalPythonBundler(requirements=FUNCTIONS_REQUIREMENTS)
    other_python = LocalPythonBundler(requirements=FUNCTIONS_REQUIREMENTS, python_version="3.13")

    # WHEN we hash them
    # THEN the hash is stable and follows the target Python (the functions' code is not part of it)
    assert content_hash(current) == content_hash(LocalPythonBundler(requirements=FUNCTIONS_REQUIREMENTS))
    assert content_hash(current) != content_hash(other_python)


def test_bundled_layout_puts_dependencies_in_the_function_asset():
    # GIVEN the stack built with the alternative layout (dependencies inside each function's asset)
    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": []})
    stack = RegistryAutopilotStack(app, "Bundled", config=RegistryConfig(), layout=DependencyLayout.BUNDLED)

    # WHEN it is synthesized
    template = Template.from_stack(stack)

    # THEN there is no layer and the function has none
    template.resource_count_is("AWS::Lambda::LayerVersion", 0)
    for function in template.find_resources("AWS::Lambda::Function").values():
        assert "Layers" not in function["Properties"]


def test_pruning_drops_what_the_runtime_provides_and_console_scripts(tmp_path: Path):
    # GIVEN an installed target directory with boto3 & co., console scripts and caches next to a real package
    for path in ("boto3", "boto3-1.44.5.dist-info", "botocore", "s3transfer", "bin", "mlflow/__pycache__"):
        (tmp_path / path).mkdir(parents=True)
    (tmp_path / "mlflow" / "__init__.py").write_text("")

    # WHEN it is pruned
    prune_site_packages(tmp_path)

    # THEN only the real package remains, without its cache
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["mlflow", "mlflow/__init__.py"]


def test_the_lock_pins_every_direct_requirement_at_its_version_and_leaves_out_the_runtime():
    # GIVEN the functions' direct requirements and the lock the bundle installs from
    from stacks.constants import FUNCTIONS_LOCK, RUNTIME_PROVIDED_PACKAGES

    def pins(path):  # type: ignore[no-untyped-def]
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return {
            re.sub(r"\[.*\]", "", name).lower().replace("_", "-"): version
            for name, _, version in (line.partition("==") for line in lines if line)
        }

    direct, locked = pins(FUNCTIONS_REQUIREMENTS), pins(FUNCTIONS_LOCK)
    # THEN every direct requirement is locked at the same version (regenerate with `make lock` otherwise)
    assert {name: locked.get(name) for name in direct} == direct
    # AND nothing the Lambda runtime provides is bundled
    assert not set(RUNTIME_PROVIDED_PACKAGES) & set(locked)
    # AND the bundle installs exactly the lock, without resolving anything anew
    command = LocalPythonBundler(requirements=FUNCTIONS_LOCK).pip_command(Path("/tmp/out"))
    assert "--no-deps" in command
