"""The code every route's function runs: the `functions` package and its third-party dependencies.

Two layouts, measured from `cdk.out` (cdk synth, November 2026; zipped = deflate level 9, as uploaded):
- `LAYER` (used): one `LayerVersion` with the dependencies under `python/` (65.8 MB unzipped, 18.0 MB zipped,
  3382 files) plus one asset with the `functions` package (63 kB unzipped, 26 kB zipped). Every route shares both.
  A code change uploads 26 kB; the dependency zip changes only with `functions/requirements.lock`.
- `BUNDLED`: one asset with dependencies and code together (65.9 MB unzipped, 17.9 MB zipped, 3407 files). Routes
  would share it too (same hash), so the first upload is the same size, but every code change re-uploads and
  re-deploys 18 MB.
Both stay far below Lambda's 250 MB unzipped limit (function plus layers).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from aws_cdk import AssetHashType, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.domain.policy import load_policies
from stacks.bundling import LocalPythonBundler, bundling_options, content_hash, source_hash
from stacks.constants import FUNCTIONS_DIR, FUNCTIONS_LOCK, LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, POLICIES_DIR


class DependencyLayout(StrEnum):
    LAYER = "layer"
    BUNDLED = "bundled"


class FunctionCode(Construct):
    """`code` for `lambda_.Function(code=...)` and the `layers` that go with it, shared by every route."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layout: DependencyLayout = DependencyLayout.LAYER,
        policies_dir: Path = POLICIES_DIR,
    ):
        super().__init__(scope, construct_id)
        # A broken policy stops the synth here, with its file, line and problem (PolicyError).
        self.policies = load_policies(policies_dir)
        # Whatever the folder is called, the bundle holds it as `policies/` (the functions' POLICIES_DIR default).
        policies = (policies_dir, POLICIES_DIR.name)
        if layout is DependencyLayout.LAYER:
            self.layers: list[lambda_.ILayerVersion] = [self._build_dependency_layer()]
            self.code = self._build_code(LocalPythonBundler(packages=[FUNCTIONS_DIR, policies]), policies_dir)
        else:
            self.layers = []
            self.code = self._build_code(
                LocalPythonBundler(requirements=FUNCTIONS_LOCK, packages=[FUNCTIONS_DIR, policies]), policies_dir
            )

    def _build_dependency_layer(self) -> lambda_.LayerVersion:
        return dependency_layer(
            self,
            "Dependencies",
            lock=FUNCTIONS_LOCK,
            description="Third-party packages of the registry-autopilot functions (functions/requirements.lock)",
        )

    @staticmethod
    def _build_code(bundler: LocalPythonBundler, policies_dir: Path) -> lambda_.Code:
        # The asset root holds the `functions` package (handlers are `functions.handlers.<module>.<function>`)
        # and `policies/`; the hash covers both, so a policy change alone deploys new code.
        return lambda_.Code.from_asset(
            str(FUNCTIONS_DIR),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=source_hash([FUNCTIONS_DIR, policies_dir]) + content_hash(bundler)[:16],
            bundling=bundling_options(bundler),
        )


def dependency_layer(scope: Construct, construct_id: str, *, lock: Path, description: str) -> lambda_.LayerVersion:
    """A layer with the packages `lock` pins, for Lambda's platform (Lambda puts `python/` on sys.path)."""
    bundler = LocalPythonBundler(requirements=lock, subdir="python")
    return lambda_.LayerVersion(
        scope,
        construct_id,
        description=description,
        code=lambda_.Code.from_asset(
            str(FUNCTIONS_DIR),
            # Hash the requirements and the target platform, not the source: code edits keep the layer.
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=content_hash(bundler),
            bundling=bundling_options(bundler),
        ),
        compatible_runtimes=[LAMBDA_RUNTIME],
        compatible_architectures=[LAMBDA_ARCHITECTURE],
        # CloudFormation deletes a replaced version only after the update succeeded, so a rollback still has it.
        removal_policy=RemovalPolicy.DESTROY,
    )
