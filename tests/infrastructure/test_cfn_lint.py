"""cfn-lint over the synthesized templates: no errors, and no warnings but the one CDK always causes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

from tests.infrastructure.conftest import Synth

# CDK adds DependsOn on a function's role although Fn::GetAtt already orders them; harmless and not ours.
ACCEPTED_WARNINGS = {"W3005"}


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_template_passes_cfn_lint(synth_name: str, request: pytest.FixtureRequest, tmp_path: Path):
    # GIVEN a synthesized template written to disk
    synth: Synth = request.getfixturevalue(synth_name)
    template_file = tmp_path / "template.json"
    template_file.write_text(json.dumps(synth.template_json))

    # WHEN cfn-lint checks it against two commercial regions
    matches = lint_file(template_file, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))

    # THEN it reports no error and no unexpected warning
    findings = [(m.rule.id, m.message) for m in matches]
    assert [f for f in findings if f[0].startswith("E")] == []
    assert [f for f in findings if f[0] not in ACCEPTED_WARNINGS and not f[0].startswith("I")] == []
