"""Lambda bundling on the host, without Docker.

CDK calls `try_bundle(output_dir, options)` before it would start a container; returning True means Docker is never
needed. pip downloads wheels for Lambda's platform (`--platform ... --only-binary=:all:`) whatever the host is, so
a developer's laptop, CI and this machine build the same bundle.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess  # nosec B404: runs pip to bundle the layer
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling

from stacks.constants import LAMBDA_PIP_PLATFORMS, LAMBDA_PYTHON_VERSION, RUNTIME_PROVIDED_PACKAGES

# Never copied with a package: byte-code caches, tests and tool caches.
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".pytest_cache", ".ruff_cache", ".mypy_cache")


@jsii.implements(ILocalBundling)
class LocalPythonBundler:
    """Installs `requirements` for Lambda's platform and/or copies Python packages, under `output_dir/subdir`."""

    def __init__(
        self,
        *,
        requirements: Path | None = None,
        packages: Sequence[Path | tuple[Path, str]] = (),
        subdir: str = "",
        python_version: str = LAMBDA_PYTHON_VERSION,
        platforms: Sequence[str] = LAMBDA_PIP_PLATFORMS,
    ) -> None:
        self._requirements = requirements
        # A folder alone is copied under its own name; (folder, name) under `name`.
        self._packages = tuple(p if isinstance(p, tuple) else (p, p.name) for p in packages)
        self._subdir = subdir
        self._python_version = python_version
        self._platforms = tuple(platforms)

    def fingerprint(self) -> dict[str, str]:
        """What, besides the source files, decides the bundle's content (it goes into the asset hash)."""
        return {
            "BUNDLE_PYTHON_VERSION": self._python_version,
            "BUNDLE_PLATFORMS": ",".join(self._platforms),
            "BUNDLE_REQUIREMENTS_SHA256": _sha256(self._requirements) if self._requirements else "",
            "BUNDLE_PACKAGES": ",".join(name for _, name in self._packages),
            "BUNDLE_SUBDIR": self._subdir,
            "BUNDLE_PRUNED": ",".join(RUNTIME_PROVIDED_PACKAGES),
        }

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        target = Path(output_dir) / self._subdir
        target.mkdir(parents=True, exist_ok=True)
        if self._requirements is not None:
            self._pip_install(target)
        for package, name in self._packages:
            shutil.copytree(package, target / name, ignore=_IGNORED, dirs_exist_ok=True)
        return True

    def pip_command(self, target: Path) -> list[str]:
        platforms = [arg for platform in self._platforms for arg in ("--platform", platform)]
        # A lock file pins every package already: install exactly those, nothing pip would resolve anew.
        locked = ["--no-deps"] if self._requirements is not None and self._requirements.suffix == ".lock" else []
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--requirement",
            str(self._requirements),
            "--target",
            str(target),
            *platforms,
            "--implementation",
            "cp",
            "--python-version",
            self._python_version,
            "--only-binary=:all:",
            "--no-compile",
            "--upgrade",
            *locked,
        ]

    def _pip_install(self, target: Path) -> None:
        subprocess.run(self.pip_command(target), check=True)  # nosec B603: argv list, no shell
        prune_site_packages(target)


def write_lock(
    requirements: Path,
    lock: Path,
    *,
    python_version: str = LAMBDA_PYTHON_VERSION,
    platforms: Sequence[str] = LAMBDA_PIP_PLATFORMS,
) -> list[str]:
    """Resolve `requirements` for Lambda's platform and write every package, pinned, to `lock`."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        platform_args = [arg for platform in platforms for arg in ("--platform", platform)]
        subprocess.run(  # nosec B603: argv list, no shell
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                "--target",
                str(Path(scratch) / "t"),
                "--requirement",
                str(requirements),
                *platform_args,
                "--implementation",
                "cp",
                "--python-version",
                python_version,
                "--only-binary=:all:",
            ],
            check=True,
        )
        installs = json.loads(report.read_text())["install"]
    pins = sorted(
        f"{item['metadata']['name']}=={item['metadata']['version']}"
        for item in installs
        if _normalize(item["metadata"]["name"]) not in {_normalize(name) for name in RUNTIME_PROVIDED_PACKAGES}
    )
    header = (
        f"# Generated by `make lock` from {requirements.name} for Lambda "
        f"(CPython {python_version}, {', '.join(platforms)}).\n"
        "# The bundle installs exactly these, with --no-deps; boto3 and botocore come with the Lambda runtime.\n"
    )
    lock.write_text(header + "\n".join(pins) + "\n")
    return pins


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_hash(folders: Sequence[Path]) -> str:
    """A hash of every file under `folders` (byte-code caches left out): changes when any source changes."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(path.relative_to(folder.parent).as_posix().encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def content_hash(bundler: LocalPythonBundler) -> str:
    """A stable hash of everything a dependency-only bundle depends on (for `AssetHashType.CUSTOM`)."""
    return hashlib.sha256(json.dumps(bundler.fingerprint(), sort_keys=True).encode()).hexdigest()


def prune_site_packages(site_packages: Path) -> None:
    """Drop what the Lambda runtime already has (boto3 & co.), console scripts and byte-code caches."""
    for name in RUNTIME_PROVIDED_PACKAGES:
        for path in (site_packages / name, *site_packages.glob(f"{name}-*.dist-info")):
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(site_packages / "bin", ignore_errors=True)
    for cache in list(site_packages.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def bundling_options(bundler: LocalPythonBundler) -> BundlingOptions:
    """Options whose `local` bundler always succeeds; the image is never pulled (CDK needs one to be named).

    The bundler's fingerprint rides in `environment` because CDK hashes the bundling options (as JSON) into the
    asset hash, and a jsii object serializes to nothing: a new Python version or platform then re-bundles.
    """
    return BundlingOptions(
        image=DockerImage.from_registry("local-bundling-only"),
        command=["false"],  # would fail loudly if CDK ever fell back to Docker
        environment=bundler.fingerprint(),
        local=bundler,
    )


if __name__ == "__main__":
    from stacks.constants import FUNCTIONS_LOCK, FUNCTIONS_REQUIREMENTS

    pinned = write_lock(FUNCTIONS_REQUIREMENTS, FUNCTIONS_LOCK)
    print(f"wrote {len(pinned)} pins to {FUNCTIONS_LOCK}")
