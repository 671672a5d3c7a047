"""Synthesized stacks shared by the infrastructure tests.

Each CDK app costs seconds (jsii starts a Node process and cdk-nag walks the tree), so every configuration is
synthesized once per session, with both cdk-nag packs attached exactly as `app.py` attaches them: a template
these tests read has passed cdk-nag. Bundling is skipped (`aws:cdk:bundling-stacks: []`); the assets still get
their hashes, and `test_cli.py` runs one real bundling synth.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from functions.project import ROOT

# jsii prints a banner on stderr for a Node version past its support window; the tests do not need to see it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, Stack  # after the environment above: jsii reads it on import
from aws_cdk.assertions import Template

REPO_ROOT = ROOT
NAG_PACKS = {"AwsSolutions", "Serverless"}
TRACKING_URI = "https://mlflow.example.com"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mlflow/credentials-AbCdEf"
SECRET_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SUBNET_IDS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
SECURITY_GROUP_IDS = ["sg-0123456789abcdef0"]

# Everything off the defaults at once, in the string form `cdk -c key=value` passes.
CUSTOM_CONTEXT = {
    "stackName": "RegistryAutopilotCustom",
    "alarmEmail": "oncall@example.com",
    "artifactRootPrefix": "teams/mlflow",
    "archiveRetentionDays": "7",
    "logRetentionDays": "90",
    "registerMaxConcurrency": "17",
    "mlflowTrackingUri": "databricks",
    "mlflowRegistryUri": "databricks-uc",
    "mlflowCredentialsSecretArn": SECRET_ARN,
    "mlflowCredentialsKmsKeyArn": SECRET_KEY_ARN,
    "modelNameTag": "team.model",
    "experimentModelNames": '{"12": "churn"}',
    "maxPendingHours": "2",
    "noncurrentVersionExpirationDays": "30",
    "databricksInstanceProfile": "true",
    "tracing": "true",
    "vpcSubnetIds": ",".join(SUBNET_IDS),
    "vpcSecurityGroupIds": SECURITY_GROUP_IDS,
    "webhooks": "true",
    "webhookReservedConcurrency": "10",
    "recorder": "true",
}


PROOF_LAYER_ARN = "arn:aws:lambda:eu-west-1:123456789012:layer:proof-deps:4"
PROOF_CONTEXT = {
    "stackName": "RegistryAutopilotProof",
    "proof": "true",
    "proofLayerArn": PROOF_LAYER_ARN,
    "proofIndexUrl": "https://pypi.example.com/simple",
    "proofPythonDownloads": "true",
    "vpcSubnetIds": ",".join(SUBNET_IDS),
    "vpcSecurityGroupIds": SECURITY_GROUP_IDS,
}
"""Proofs on: the validate function sized for them (functions.routing.proving), with the operator's layer; in a VPC,
where the proofs' package index is a mirror (`proofIndexUrl`) the subnets can reach, and uv may fetch a model's
Python (`proofPythonDownloads`)."""


def cdk_json_context() -> dict[str, Any]:
    """The context `cdk` passes to the app: feature flags and project defaults from cdk.json."""
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


@dataclass(frozen=True)
class Synth:
    """One synthesized app: the stack object (for logical ids) and its template."""

    stack: Stack
    template_json: dict[str, Any]
    outdir: Path

    @property
    def autopilot(self) -> Any:
        """The `RegistryAutopilot` construct the stack holds (bucket, buses, pipelines, monitoring ...)."""
        return self.stack.autopilot  # type: ignore[attr-defined]

    @property
    def template(self) -> Template:
        return Template.from_json(self.template_json)

    def logical_id(self, construct: Any) -> str:
        """The logical id of an L2 construct's resource (or of an L1 itself)."""
        resource = getattr(construct.node, "default_child", None) or construct
        return self.stack.resolve(resource.logical_id)

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template_json["Resources"].items() if v["Type"] == resource_type}


def synthesize(context: Mapping[str, Any], outdir: Path) -> Synth:
    """Build the app as `app.py` does (cdk-nag attached) and synthesize it; raises if cdk-nag finds anything."""
    from app import build_app

    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": [], **context}, outdir=str(outdir))
    build_app(app)
    (stack,) = (child for child in app.node.children if isinstance(child, Stack))
    assembly = app.synth()
    return Synth(stack=stack, template_json=assembly.get_stack_by_name(stack.stack_name).template, outdir=outdir)


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """cdk.json as committed: placeholder tracking URI, tracing off, no secret, no Databricks profile."""
    return synthesize({}, outdir=tmp_path_factory.mktemp("default-cdk.out"))


@pytest.fixture(scope="session")
def custom_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(CUSTOM_CONTEXT, outdir=tmp_path_factory.mktemp("custom-cdk.out"))


@pytest.fixture(scope="session")
def proof_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(PROOF_CONTEXT, outdir=tmp_path_factory.mktemp("proof-cdk.out"))


@pytest.fixture(scope="session")
def template(default_synth: Synth) -> Template:
    return default_synth.template


# An explicit region (the `region` key): the synth decides SnapStart and function URLs itself (stacks/regions.py).
REGIONAL_CONTEXT = {"region": "eu-west-1", "snapStart": "true", "webhooks": "true"}
NO_SNAP_START_REGION = "ap-southeast-6"
"""Asia Pacific (New Zealand): no SnapStart there (Lambda's SnapStart guide, cfn-lint's E2530 data)."""


@pytest.fixture(scope="session")
def regional_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(REGIONAL_CONTEXT, outdir=tmp_path_factory.mktemp("regional-cdk.out"))


@pytest.fixture(scope="session")
def no_snap_start_region_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize({"region": NO_SNAP_START_REGION}, outdir=tmp_path_factory.mktemp("no-snap-start-cdk.out"))
