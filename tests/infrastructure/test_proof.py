"""Proofs on AWS: off by default; with context `proof`, the validate function is sized for them and gets the
operator's layer (numpy, pandas, uv), and no other function changes. A policy that asks for a proof stops the synth
of a stack that runs none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack

from functions.routing import PROOF_EPHEMERAL_STORAGE_MB, PROOF_TIMEOUT_SECONDS, VALIDATE, proving
from stacks.autopilot import RegistryAutopilot
from stacks.config import ConfigError, RegistryConfig
from stacks.constants import POLICIES_DIR
from tests.infrastructure.conftest import PROOF_LAYER_ARN, Synth, cdk_json_context
from tests.infrastructure.template_queries import as_list, references, role_statements

VALIDATE_DESCRIPTION = VALIDATE.description


def _functions(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        p["Properties"]["Description"]: p["Properties"]
        for p in synth.resources("AWS::Lambda::Function").values()
        if "Description" in p["Properties"]
    }


def test_by_default_no_function_proves_and_validate_keeps_its_size(default_synth: Synth):
    # GIVEN the stack as cdk.json has it
    # WHEN synthesized
    validate = _functions(default_synth)[VALIDATE_DESCRIPTION]
    # THEN no function has proof settings, and validate has the route's timeout, memory and /tmp
    for function in _functions(default_synth).values():
        assert "PROOF" not in function.get("Environment", {}).get("Variables", {})
    assert (validate["Timeout"], validate["MemorySize"]) == (VALIDATE.timeout_seconds, VALIDATE.memory_mb)
    assert "EphemeralStorage" not in validate


def test_with_proofs_on_validate_is_sized_for_them_and_gets_the_layer(proof_synth: Synth):
    # GIVEN context proof=true with a layer and a package index
    functions = _functions(proof_synth)
    validate = functions[VALIDATE_DESCRIPTION]
    # THEN validate has Lambda's longest timeout, more memory and /tmp, no SnapStart, the layer and the settings
    sized = proving(VALIDATE)
    assert (validate["Timeout"], validate["MemorySize"]) == (sized.timeout_seconds, sized.memory_mb)
    assert validate["EphemeralStorage"] == {"Size": PROOF_EPHEMERAL_STORAGE_MB}
    assert "SnapStart" not in validate
    assert PROOF_LAYER_ARN in validate["Layers"]
    variables = validate["Environment"]["Variables"]
    assert variables["PROOF"] == "uv"
    assert variables["PROOF_TIMEOUT_SECONDS"] == str(PROOF_TIMEOUT_SECONDS)
    assert variables["PROOF_INDEX_URL"] == "https://pypi.example.com/simple"
    assert variables["PROOF_PYTHON_DOWNLOADS"] == "true"
    assert PROOF_TIMEOUT_SECONDS < sized.timeout_seconds
    # AND its queue hands it one record at a time
    [validate_id] = [
        logical_id
        for logical_id, resource in proof_synth.resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Description") == VALIDATE_DESCRIPTION
    ]
    [mapping] = [
        m["Properties"]
        for m in proof_synth.resources("AWS::Lambda::EventSourceMapping").values()
        if validate_id in references(m["Properties"]["FunctionName"])
    ]
    assert mapping["BatchSize"] == 1
    # AND no other function has the layer or the settings
    for description, function in functions.items():
        if description != VALIDATE_DESCRIPTION:
            assert PROOF_LAYER_ARN not in function.get("Layers", []), description
            assert "PROOF" not in function.get("Environment", {}).get("Variables", {}), description


def test_a_policy_that_asks_for_a_proof_stops_the_synth_of_a_stack_that_runs_none(tmp_path: Path):
    # GIVEN a policies folder where one model's policy says `proof: smoke`
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "default.yaml").write_text((POLICIES_DIR / "default.yaml").read_text())
    (policies / "churn.yaml").write_text("proof: smoke\n")
    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": []}, outdir=str(tmp_path / "out"))
    # WHEN the construct is built without context `proof`
    # THEN the synth stops, naming the policy and the setting
    with pytest.raises(ConfigError, match=r"policies/churn\.yaml asks for `proof: smoke`.*'proof'"):
        RegistryAutopilot(Stack(app, "Host"), "ModelRegistry", policies_dir=policies)


def test_the_validate_function_may_read_the_reference_datasets_the_policies_name_and_no_other(tmp_path: Path):
    # GIVEN a stack that proves models, with a policy that scores versions on a reference dataset
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "default.yaml").write_text((POLICIES_DIR / "default.yaml").read_text())
    (policies / "churn.yaml").write_text(
        "proof: smoke\ncompare: {alias: champion, metric: accuracy}\n"
        "reference: {dataset: datasets/churn/holdout.csv, target: churned, metrics: [accuracy]}\n"
    )
    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": []}, outdir=str(tmp_path / "out"))
    stack = Stack(app, "Host")
    config = RegistryConfig(proof=True, proof_layer_arn=PROOF_LAYER_ARN)
    autopilot = RegistryAutopilot(stack, "ModelRegistry", config=config, policies_dir=policies)
    synth = Synth(stack, app.synth().get_stack_by_name("Host").template, tmp_path / "out")
    # WHEN each route's role is read
    granted = {
        name: [s for s in role_statements(synth, p.role) if s.get("Sid") == "ReadReferenceDatasets"]
        for name, p in autopilot.pipelines.items()
    }
    # THEN validate may read exactly that object (and its versions), and no other route any
    [statement] = granted.pop("validate")
    assert statement["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    [resource] = as_list(statement["Resource"])
    assert "datasets/churn/holdout.csv" in json.dumps(resource)
    assert "*" not in json.dumps(resource)
    assert all(found == [] for found in granted.values())
