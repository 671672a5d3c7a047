"""The wheel: one top-level package, the construct and the command lines usable from it, beside a host's own packages.

The wheel is built from this checkout with the in-tree backend (build_backend/) and installed with `--target` into a
folder of its own. A host app (its own `functions` and `stacks` packages, as CDK apps often have) then imports
`registry_autopilot` from there, with the repository nowhere on its path, and synthesizes a stack holding the
construct. Nothing is downloaded: no build isolation, `--no-index`, no dependencies installed (the dev venv has them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from functions.routing import ROUTES
from tests.infrastructure.conftest import REPO_ROOT, Synth

SCRIPTS = ("registry-autopilot-ops", "registry-autopilot-replay", "registry-autopilot-sandbox")

# The host app: its own `functions` and `stacks`, imported first, then the construct in a stack of its own.
HOST_APP = """
import json, sys
from pathlib import Path

import functions, stacks  # the host's own packages
from aws_cdk import App, Stack

from registry_autopilot import RegistryAutopilot, RegistryConfig
from registry_autopilot.functions.project import IMPORT_ROOT, module_name
from registry_autopilot.functions.routing import REGISTER
from registry_autopilot.sandbox.worker import import_handler
from registry_autopilot.stacks.constants import FUNCTIONS_DIR, POLICIES_DIR

context = json.loads(sys.argv[1])
app = App(context={**context, "aws:cdk:bundling-stacks": []}, outdir=sys.argv[2])
stack = Stack(app, "PlatformTools")
RegistryAutopilot(stack, "ModelRegistry", config=RegistryConfig(mlflow_tracking_uri="https://mlflow.example.com"))
template = app.synth().get_stack_by_name("PlatformTools").template
functions_ = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
print(json.dumps({
    "host_packages": [functions.HOST, stacks.HOST],
    "sys_path": sys.path,
    "project_modules": {
        name: getattr(module, "__file__", None) or ""
        for name, module in sys.modules.items()
        if name.partition(".")[0] in ("registry_autopilot", "functions", "stacks", "ops", "replay", "sandbox")
    },
    "handlers": sorted({p["Handler"] for p in functions_ if p["Handler"].startswith("functions.")}),
    "code_keys": sorted({p["Code"]["S3Key"] for p in functions_ if p["Handler"].startswith("functions.")}),
    "functions_dir": str(FUNCTIONS_DIR),
    "policies_dir": str(POLICIES_DIR),
    "import_root": str(IMPORT_ROOT),
    "worker_module": module_name("sandbox.worker"),
    "sandbox_handler_module": import_handler(REGISTER.handler).__module__,
}))
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    site: Path
    host: Path


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    return {**env, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def _run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built from this checkout, installed into a folder of its own; a host app's folder beside it."""
    base = tmp_path_factory.mktemp("package")
    wheels, site, host = base / "wheels", base / "site", base / "host"
    pip = [sys.executable, "-m", "pip"]
    built = _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(REPO_ROOT)],
        cwd=base,
        env=_clean_env(),
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("*.whl")
    install = [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)]
    done = _run(install, cwd=base, env=_clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    for package in ("functions", "stacks"):
        (host / package).mkdir(parents=True)
        (host / package / "__init__.py").write_text(f'HOST = "the host app\'s own {package}"\n')
    (host / "app.py").write_text(HOST_APP)
    return Installed(wheel=wheel, site=site, host=host)


@pytest.fixture(scope="module")
def host_synth(installed: Installed) -> dict[str, Any]:
    """The host app run as `cdk` runs it, from its folder, with the installed copy after its own packages."""
    feature_flags = {
        k: v for k, v in json.loads((REPO_ROOT / "cdk.json").read_text())["context"].items() if k.startswith("@")
    }
    env = _clean_env(PYTHONPATH=os.pathsep.join([str(installed.host), str(installed.site)]), PYTHONSAFEPATH="1")
    argv = [sys.executable, "-P", "app.py", json.dumps(feature_flags), str(installed.host / "cdk.out")]
    result = _run(argv, cwd=installed.host, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_dependencies_are_pinned_as_in_requirements_txt():
    # GIVEN pyproject.toml's dependencies and the pins of requirements.txt
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = [
        line.strip()
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    # WHEN they are compared  THEN they are the same set, every one pinned exactly
    assert sorted(project["dependencies"]) == sorted(pins)
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[\w.]+", requirement) for requirement in project["dependencies"])
    assert project["requires-python"] == ">=3.11"
    assert set(project["scripts"]) == set(SCRIPTS)


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_package_with_the_lambda_code_unchanged(installed: Installed):
    # GIVEN the built wheel
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        register = wheel.read("registry_autopilot/functions/handlers/register.py").decode()
        bundled = wheel.read("registry_autopilot/_lambda/functions/handlers/register.py").decode()

    # THEN its only top-level names are the package and its metadata
    assert {name.split("/")[0] for name in names} == {"registry_autopilot", "registry_autopilot-0.1.0.dist-info"}
    # AND the importable copy imports through `registry_autopilot`, the Lambda copy is the repository's file
    assert re.search(r"^from functions\.", register, re.MULTILINE) is None
    assert "from registry_autopilot.functions." in register
    assert bundled == (REPO_ROOT / "functions" / "handlers" / "register.py").read_text()
    # AND the policies, the locks the bundle installs, and the console scripts are there
    assert "registry_autopilot/policies/default.yaml" in names
    assert "registry_autopilot/_lambda/functions/requirements.lock" in names
    assert not [name for name in names if "__pycache__" in name or "/tests/" in name]


@pytest.mark.slow
def test_the_construct_synthesizes_from_the_installed_copy_beside_the_hosts_own_packages(
    installed: Installed, host_synth: dict[str, Any], default_synth: Synth
):
    # GIVEN the host app synthesized with the installed copy (see host_synth)
    site = str(installed.site.resolve())

    # THEN the host's `functions` and `stacks` are its own, and every project module came from the installed copy
    assert host_synth["host_packages"] == ["the host app's own functions", "the host app's own stacks"]
    assert str(REPO_ROOT) not in host_synth["sys_path"]
    modules = host_synth["project_modules"]
    assert {name for name in modules if not name.startswith("registry_autopilot")} == {"functions", "stacks"}
    assert all(path.startswith(site) for name, path in modules.items() if name.startswith("registry_autopilot"))
    assert all(modules[name].startswith(str(installed.host)) for name in ("functions", "stacks"))
    # AND the functions run the repository's handlers, from the same code asset as the project's own stack
    assert host_synth["handlers"] == sorted(route.handler for route in ROUTES)
    repo_keys = {
        r["Properties"]["Code"]["S3Key"]
        for r in default_synth.resources("AWS::Lambda::Function").values()
        if r["Properties"]["Handler"].startswith("functions.")
    }
    assert host_synth["code_keys"] == sorted(repo_keys)
    assert host_synth["functions_dir"] == str(Path(site) / "registry_autopilot" / "_lambda" / "functions")
    assert host_synth["policies_dir"] == str(Path(site) / "registry_autopilot" / "policies")


@pytest.mark.slow
def test_the_installed_sandbox_names_its_own_modules_for_its_child_processes(
    host_synth: dict[str, Any], installed: Installed
):
    # GIVEN the installed copy  WHEN it names the modules its child processes run and the handlers they import
    # THEN they are the installed package's, from the folder it was installed into
    assert host_synth["worker_module"] == "registry_autopilot.sandbox.worker"
    assert host_synth["sandbox_handler_module"] == "registry_autopilot.functions.handlers.register"
    assert host_synth["import_root"] == str(installed.site.resolve())


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_each_console_script_runs_from_the_installed_copy(installed: Installed, script: str):
    # GIVEN a console script of the installed copy, run from the host's folder
    env = _clean_env(PYTHONPATH=str(installed.site), PYTHONSAFEPATH="1")

    # WHEN it is asked for its help
    result = _run([str(installed.site / "bin" / script), "--help"], cwd=installed.host, env=env)

    # THEN it prints its usage under its own name
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.startswith(f"usage: {script} ")


def _backend() -> Any:
    sys.path.insert(0, str(REPO_ROOT / "build_backend"))
    try:
        import registry_autopilot_build
    finally:
        sys.path.remove(str(REPO_ROOT / "build_backend"))
    return registry_autopilot_build


def test_the_backend_rewrites_the_projects_imports_and_refuses_a_bare_one():
    # GIVEN a module importing the project's packages in the forms the repository uses, and a third-party one
    backend = _backend()
    source = (
        "from functions.routing import ROUTES\n"
        "import stacks.config as config, json\n"
        "if TYPE_CHECKING:\n"
        "    from ops.target import (\n        Target,\n    )\n"
        "from functionsx import y\n"
        'HANDLER = "functions.handlers.register.lambda_handler"\n'
    )

    # WHEN it is rewritten THEN the project's imports go through `registry_autopilot`, nothing else changes
    assert backend.rewrite_imports(source, ("functions", "stacks", "ops")) == (
        "from registry_autopilot.functions.routing import ROUTES\n"
        "import registry_autopilot.stacks.config as config, json\n"
        "if TYPE_CHECKING:\n"
        "    from registry_autopilot.ops.target import (\n        Target,\n    )\n"
        "from functionsx import y\n"
        'HANDLER = "functions.handlers.register.lambda_handler"\n'
    )
    # AND `import functions.routing`, which binds `functions` for the rest of the module, stops the build
    with pytest.raises(backend.BuildError, match=r"m\.py:1: `import functions.routing` binds `functions`"):
        backend.rewrite_imports("import functions.routing\n", ("functions",), filename="m.py")
