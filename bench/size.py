"""Deployment size: each Lambda asset (code, layer) of a real bundling `cdk synth`, unzipped and zipped."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import zipfile
from pathlib import Path

from functions.project import ROOT

REPO_ROOT = ROOT
STACK = "RegistryAutopilot"
LAMBDA_UNZIPPED_LIMIT_MB = 250
TRACKING_URI = "https://mlflow.example.com"
MB = 1024 * 1024


def synth(outdir: Path) -> None:
    """`cdk synth` with bundling (pip on the host, no Docker), as `make synth` runs it."""
    env = {
        **os.environ,
        "PATH": f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}"
        + os.environ.get("PATH", ""),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        ["cdk", "synth", "--quiet", "--no-notices", "-c", f"mlflowTrackingUri={TRACKING_URI}", "--output", str(outdir)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cdk synth failed: {result.stderr[-3000:]}")


def _unzipped_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _zipped_bytes(directory: Path) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "asset.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    zipped.write(path, path.relative_to(directory).as_posix())
        return archive.stat().st_size


def lambda_assets(outdir: Path) -> dict[str, Path]:
    """Logical id → asset directory, for every Lambda function and layer with an S3 asset in the template."""
    template = json.loads((outdir / f"{STACK}.template.json").read_text())
    found = {}
    for logical_id, resource in sorted(template["Resources"].items()):
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::LayerVersion":
            key = properties["Content"]["S3Key"]
        elif resource["Type"] == "AWS::Lambda::Function" and "S3Key" in properties.get("Code", {}):
            key = properties["Code"]["S3Key"]
        else:
            continue
        directory = outdir / f"asset.{key.removesuffix('.zip')}"
        if directory.is_dir():
            found[logical_id] = directory
    return found


def measure(outdir: Path | None = None) -> dict:
    """Sizes of each distinct asset (functions sharing one asset are listed together)."""
    with tempfile.TemporaryDirectory() as scratch:
        target = outdir or Path(scratch) / "cdk.out"
        if outdir is None:
            synth(target)
        by_directory: dict[Path, list[str]] = {}
        for logical_id, directory in lambda_assets(target).items():
            by_directory.setdefault(directory, []).append(logical_id)
        assets = []
        for directory, users in sorted(by_directory.items()):
            unzipped = _unzipped_bytes(directory)
            assets.append(
                {
                    "asset": directory.name,
                    "used_by": users,
                    "unzipped_mb": unzipped / MB,
                    "zipped_mb": _zipped_bytes(directory) / MB,
                }
            )
    return {"limit_unzipped_mb": LAMBDA_UNZIPPED_LIMIT_MB, "assets": assets}
