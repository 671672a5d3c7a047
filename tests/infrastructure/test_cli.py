"""The real CDK CLI with the real cdk.json: once without bundling (`cdk ls`), once with Lambda bundling (slow)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bench.size import LAMBDA_UNZIPPED_LIMIT_MB, _unzipped_bytes
from tests.infrastructure.conftest import NAG_PACKS, REPO_ROOT, TRACKING_URI

CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
STACK = "RegistryAutopilot"


def _cdk(*args: str, outdir: Path) -> subprocess.CompletedProcess[str]:
    if not CDK.exists():
        pytest.fail(f"{CDK} is missing: run `make deps` (npm ci) first")
    env = {
        **os.environ,
        # cdk.json runs `python3 app.py`: the project's venv must come first on PATH, as the Makefile arranges.
        "PATH": f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [str(CDK), *args, "--no-notices", "--output", str(outdir)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _assets_by_hash(outdir: Path) -> dict[str, Path]:
    return {path.name.removeprefix("asset."): path for path in outdir.glob("asset.*")}


def test_cdk_ls_synthesizes_the_app_with_cdk_nag(tmp_path: Path):
    # GIVEN the committed cdk.json and app.py
    # WHEN the CLI lists the stacks (which synthesizes the app without bundling assets)
    result = _cdk("ls", outdir=tmp_path)

    # THEN it succeeds, cdk-nag ran without violations, and the template is there
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [STACK]
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert [p for p in report["pluginReports"] if p["pluginName"] in NAG_PACKS and p.get("violations")] == []
    assert (tmp_path / f"{STACK}.template.json").exists()


@pytest.mark.slow
def test_cdk_synth_bundles_without_docker_and_strict_mode_refuses_the_placeholder(tmp_path: Path):
    # GIVEN the committed cdk.json, a tracking URI on the command line, and no Docker
    # WHEN the CLI synthesizes in strict mode (bundling the layer and the code with pip on the host)
    result = _cdk("synth", "--strict", "--quiet", "-c", f"mlflowTrackingUri={TRACKING_URI}", outdir=tmp_path)

    # THEN synth succeeds with no warning at all
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / f"{STACK}.template.json").read_text())
    assets = _assets_by_hash(tmp_path)

    # AND the layer holds the dependencies under python/ (without what the runtime provides), the code asset holds
    # the functions package (without caches), and the template points at both
    (layer,) = (r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion")
    layer_dir = assets[layer["Properties"]["Content"]["S3Key"].removesuffix(".zip")]
    assert (layer_dir / "python" / "aws_lambda_powertools").is_dir()
    assert (layer_dir / "python" / "mlflow").is_dir()
    assert list((layer_dir / "python").glob("pydantic_core/*cpython-314-aarch64-linux-gnu.so"))
    for provided in ("boto3", "botocore", "s3transfer", "bin"):
        assert not (layer_dir / "python" / provided).exists()
    functions = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "S3Key" in r["Properties"]["Code"]
    ]
    for function in functions:
        code_dir = assets[function["Properties"]["Code"]["S3Key"].removesuffix(".zip")]
        module, _ = function["Properties"]["Handler"].rsplit(".", 1)
        assert (code_dir / (module.replace(".", "/") + ".py")).is_file()
        assert not list(code_dir.rglob("__pycache__"))
        # Lambda quotas: a function's code and all its layers, unzipped, within 250 MB, and at most 5 layers
        # (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
        layers = [template["Resources"][ref["Ref"]] for ref in function["Properties"].get("Layers", [])]
        layer_dirs = [assets[x["Properties"]["Content"]["S3Key"].removesuffix(".zip")] for x in layers]
        assert len(layers) <= 5
        unzipped = _unzipped_bytes(code_dir) + sum(_unzipped_bytes(d) for d in layer_dirs)
        assert unzipped <= LAMBDA_UNZIPPED_LIMIT_MB * 1024 * 1024, unzipped

    # WHEN the same synth runs without a tracking URI (bundles are reused from the output directory)
    placeholder = _cdk("synth", "--strict", "--quiet", outdir=tmp_path)

    # THEN strict mode refuses it, naming the missing setting
    assert placeholder.returncode != 0
    assert "mlflowTrackingUri is not set" in placeholder.stdout + placeholder.stderr
