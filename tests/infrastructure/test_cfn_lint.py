"""cfn-lint over the synthesized templates, in every region a stack can be deployed to: no errors, and no warnings
but the one CDK always causes.

A stack without a region (`app.py` is environment-agnostic) is linted in all of cfn-lint's regions (`ALL_REGIONS`),
a stack with one (`-c region=...`) in that region. Only one error is accepted, and only where it is cfn-lint's blind
spot: E2530 (SnapStart unsupported in a region) does not evaluate region conditions on a property, so it reports
the functions whose SnapStart is `Fn::If [SnapStartAvailable, ...]`; each such finding must name exactly the regions
where that condition is false (E3006, for resources, does evaluate them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.helpers import REGIONS

from tests.infrastructure.conftest import Synth
from tests.infrastructure.template_queries import condition_holds

# CDK adds DependsOn on a function's role although Fn::GetAtt already orders them; harmless and not ours.
ACCEPTED_WARNINGS = {"W3005"}
SNAP_START_CONDITION = "SnapStartAvailable"


def lint(synth: Synth, tmp_path: Path, regions: list[str]) -> list[Any]:
    template_file = tmp_path / "template.json"
    template_file.write_text(json.dumps(synth.template_json))
    return lint_file(template_file, config=ManualArgs(regions=regions))


def is_cfn_lint_blind_spot(template: dict[str, Any], match: Any) -> bool:
    """An E2530 finding on a SnapStart that the region condition already switches off in exactly those regions."""
    _, logical_id, *rest = match.path
    if match.rule.id != "E2530" or rest != ["Properties", "SnapStart", "ApplyOn"]:
        return False
    snap_start = template["Resources"][logical_id]["Properties"]["SnapStart"]
    if snap_start != {"Fn::If": [SNAP_START_CONDITION, {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]}:
        return False
    named = set(re.findall(r"'([a-z0-9-]+)'", match.message.split("supported in", 1)[1]))
    condition = template["Conditions"][SNAP_START_CONDITION]
    return named == {r for r in REGIONS if not condition_holds(template, condition, r)}


@pytest.mark.parametrize(
    ("synth_name", "regions"),
    [
        ("default_synth", ["ALL_REGIONS"]),
        ("custom_synth", ["ALL_REGIONS"]),
        ("regional_synth", ["eu-west-1"]),
        ("no_snap_start_region_synth", ["ap-southeast-6"]),
    ],
)
def test_template_passes_cfn_lint_in_every_region_it_can_be_deployed_to(
    synth_name: str, regions: list[str], request: pytest.FixtureRequest, tmp_path: Path
):
    # GIVEN a synthesized template written to disk
    synth: Synth = request.getfixturevalue(synth_name)
    template = synth.template_json

    # WHEN cfn-lint checks it in every region the stack may be deployed to
    matches = lint(synth, tmp_path, regions)

    # THEN it reports no error (but cfn-lint's SnapStart blind spot, checked against the condition) and no
    # unexpected warning
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert [(m.rule.id, m.path_string, m.message) for m in errors if not is_cfn_lint_blind_spot(template, m)] == []
    warnings = [m for m in matches if m.rule.id.startswith("W") and m.rule.id not in ACCEPTED_WARNINGS]
    assert [(m.rule.id, m.path_string, m.message) for m in warnings] == []
