"""The PEP 517 build backend of registry-autopilot: a wheel with one top-level package, `registry_autopilot`.

The repository keeps its packages at the top (`functions`, `stacks`, `ops`, `replay`, `sandbox`: `python -m ops`
from a checkout, handlers `functions.handlers.<route>.lambda_handler` on Lambda). Installed into someone's
environment under those names, they would clash with a host CDK app's own `functions/` or `stacks/`. So the wheel
holds them as subpackages of `registry_autopilot`, their absolute imports rewritten on the copies written into the
wheel (never in the repository): `from functions.x import y` -> `from registry_autopilot.functions.x import y`.

Beside them, as data:
- `registry_autopilot/_lambda/functions/`: the `functions/` tree unchanged, requirements and locks included. It is
  what the construct bundles for Lambda (`stacks.constants.FUNCTIONS_DIR`), so the deployed code, its handler paths
  and its asset hash are the same as from a checkout.
- `registry_autopilot/policies/`: the default validation policies (`stacks.constants.POLICIES_DIR`).

Module names held in strings (`python -m sandbox.worker`, a route's handler path imported by the sandbox) are not
rewritten: the code maps them at run time (`functions.project.module_name`).

Only the standard library: the wheel is a zip file with a `.dist-info` folder (the binary distribution format,
packaging.python.org/en/latest/specifications/binary-distribution-format/), so building needs no setuptools or
wheel package, with or without build isolation, and no network. `[project]` in pyproject.toml is the metadata.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import re
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST_PACKAGE = "registry_autopilot"
LAMBDA_DATA = "_lambda"
IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "tests"}
TAG = "py3-none-any"
# Written as the wheel's `registry_autopilot/__init__.py`. The construct is imported on first use (PEP 562), so the
# command lines start without loading the CDK (and its Node process).
INIT = '''"""registry-autopilot installed: the `RegistryAutopilot` construct and the command lines.

    from registry_autopilot import RegistryAutopilot, RegistryConfig

Subpackages: `functions`, `stacks`, `ops`, `replay`, `sandbox` (the repository's packages, docs/deploying.md).
"""

from __future__ import annotations

from typing import Any

__version__ = "{version}"
__all__ = ["ConfigError", "RegistryAutopilot", "RegistryConfig"]


def __getattr__(name: str) -> Any:
    if name == "RegistryAutopilot":
        from registry_autopilot.stacks.autopilot import RegistryAutopilot

        return RegistryAutopilot
    if name in ("RegistryConfig", "ConfigError"):
        from registry_autopilot.stacks import config

        return getattr(config, name)
    raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
'''


class BuildError(Exception):
    pass


# --- PEP 517 hooks ----------------------------------------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings: dict | None = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: dict | None = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: dict | None = None) -> str:
    project = _project()
    dist_info = Path(metadata_directory) / _dist_info(project)
    dist_info.mkdir(parents=True, exist_ok=True)
    for name, content in _metadata_files(project).items():
        (dist_info / name).write_bytes(content)
    return dist_info.name


def build_wheel(
    wheel_directory: str, config_settings: dict | None = None, metadata_directory: str | None = None
) -> str:
    project = _project()
    files = dict(wheel_files(project))
    dist_info = _dist_info(project)
    files.update({f"{dist_info}/{name}": content for name, content in _metadata_files(project).items()})
    record_path = f"{dist_info}/RECORD"
    record = [f"{path},sha256={_digest(content)},{len(content)}" for path, content in sorted(files.items())]
    files[record_path] = ("\n".join([*record, f"{record_path},,"]) + "\n").encode()
    name = f"{_normalized(project['name'])}-{project['version']}-{TAG}.whl"
    with zipfile.ZipFile(Path(wheel_directory) / name, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, content in files.items():
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, content)
    return name


def build_sdist(sdist_directory: str, config_settings: dict | None = None) -> str:
    project = _project()
    base = f"{_normalized(project['name'])}-{project['version']}"
    sources = ["pyproject.toml", "README.md", "build_backend", "policies", *_packages()]
    name = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / name, "w:gz") as sdist:
        for source in sources:
            for path in _files(ROOT / source) if (ROOT / source).is_dir() else [ROOT / source]:
                sdist.add(path, arcname=f"{base}/{path.relative_to(ROOT).as_posix()}", recursive=False)
        pkg_info = _metadata_files(project)["METADATA"]
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(pkg_info)
        sdist.addfile(info, io.BytesIO(pkg_info))
    return name


# --- The wheel's content ----------------------------------------------------------------------------------------------


def wheel_files(project: dict) -> Iterator[tuple[str, bytes]]:
    """(path in the wheel, content) for every file of the `registry_autopilot` package."""
    packages = _packages()
    yield f"{DIST_PACKAGE}/__init__.py", INIT.format(version=project["version"]).encode()
    for package in packages:
        for path in _files(ROOT / package):
            relative = path.relative_to(ROOT).as_posix()
            content = path.read_bytes()
            if path.suffix == ".py":
                content = rewrite_imports(content.decode(), packages, filename=relative).encode()
            yield f"{DIST_PACKAGE}/{relative}", content
    for path in _files(ROOT / "functions"):
        yield f"{DIST_PACKAGE}/{LAMBDA_DATA}/{path.relative_to(ROOT).as_posix()}", path.read_bytes()
    for path in _files(ROOT / "policies"):
        yield f"{DIST_PACKAGE}/{path.relative_to(ROOT).as_posix()}", path.read_bytes()


def rewrite_imports(source: str, packages: tuple[str, ...], *, filename: str = "<source>") -> str:
    """Every absolute import of one of `packages`, made an import of the same module under `registry_autopilot`.

    `from functions.x import y` and `import functions.x as z` are rewritten. A bare `import functions.x` would
    bind the name `functions`, which the rest of the module then uses, so it stops the build instead.
    """
    tree = ast.parse(source, filename=filename)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []  # (line index, column, module name found there)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _ours(node.module or "", packages):
            line = lines[node.lineno - 1]
            match = re.compile(r"from\s+").match(line, node.col_offset)
            if match is None or not line.startswith(node.module or "", match.end()):
                raise BuildError(f"{filename}:{node.lineno}: cannot find the module of this import to rewrite it")
            edits.append((node.lineno - 1, match.end(), node.module or ""))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if not _ours(alias.name, packages):
                    continue
                if alias.asname is None:
                    raise BuildError(
                        f"{filename}:{node.lineno}: `import {alias.name}` binds `{alias.name.partition('.')[0]}`; "
                        f"write `from {alias.name.rpartition('.')[0] or alias.name} import ...` or `import ... as ...`"
                    )
                edits.append((alias.lineno - 1, alias.col_offset, alias.name))
    for index, column, _module in sorted(edits, reverse=True):
        line = lines[index]
        lines[index] = f"{line[:column]}{DIST_PACKAGE}.{line[column:]}"
    return "".join(lines)


def _ours(module: str, packages: tuple[str, ...]) -> bool:
    return module.partition(".")[0] in packages


def _files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not IGNORED_PARTS.intersection(path.relative_to(folder).parts) and path.suffix != ".pyc"
    )


def _packages() -> tuple[str, ...]:
    """`PACKAGES` of functions/project.py: the one list of the packages the wheel holds."""
    tree = ast.parse((ROOT / "functions" / "project.py").read_text())
    for node in tree.body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        if any(isinstance(target, ast.Name) and target.id == "PACKAGES" for target in targets):
            return tuple(ast.literal_eval(node.value))  # type: ignore[arg-type]
    raise BuildError("functions/project.py defines no PACKAGES")


# --- Metadata ---------------------------------------------------------------------------------------------------------


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _dist_info(project: dict) -> str:
    return f"{_normalized(project['name'])}-{project['version']}.dist-info"


def _metadata_files(project: dict) -> dict[str, bytes]:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project['requires-python']}",
    ]
    if "license" in project and "text" in project["license"]:
        lines.append(f"License: {project['license']['text']}")
    lines += [f"Requires-Dist: {requirement}" for requirement in project.get("dependencies", [])]
    for extra, requirements in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {requirement}; extra == "{extra}"' for requirement in requirements]
    readme = project.get("readme")
    description = ""
    if isinstance(readme, str) and (ROOT / readme).is_file():
        lines.append("Description-Content-Type: text/markdown")
        description = "\n" + (ROOT / readme).read_text()
    wheel = f"Wheel-Version: 1.0\nGenerator: registry_autopilot_build\nRoot-Is-Purelib: true\nTag: {TAG}\n"
    scripts = "".join(f"{name} = {target}\n" for name, target in project.get("scripts", {}).items())
    files = {
        "METADATA": ("\n".join(lines) + "\n" + description).encode(),
        "WHEEL": wheel.encode(),
        "top_level.txt": f"{DIST_PACKAGE}\n".encode(),
    }
    if scripts:
        files["entry_points.txt"] = f"[console_scripts]\n{scripts}".encode()
    return files


def _digest(content: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
