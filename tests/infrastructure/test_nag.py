"""cdk-nag (AwsSolutions + Serverless) runs on every synth and fails it on any unacknowledged finding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from tests.infrastructure.conftest import NAG_PACKS, Synth


def _report(outdir: Path) -> dict:
    return json.loads((outdir / "validation-report.json").read_text())


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_stack_passes_both_nag_packs(synth_name: str, request: pytest.FixtureRequest):
    # GIVEN the app as app.py builds it, with AwsSolutions and Serverless checks attached (default context, and
    # every option on: tracing, secret, Databricks profile, custom prefix)
    # WHEN it is synthesized (the plugins run during synth and raise on any unacknowledged finding)
    synth: Synth = request.getfixturevalue(synth_name)

    # THEN synth succeeded and no plugin reported a violation
    report = _report(synth.outdir)
    assert [p for p in report["pluginReports"] if p["pluginName"] in NAG_PACKS and p.get("violations")] == []


def test_every_acknowledgement_has_a_reason(default_synth: Synth, custom_synth: Synth):
    # GIVEN both synthesized stacks
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY

    # WHEN we collect the acknowledgements recorded on their constructs
    acknowledged = {
        rule: reason
        for synth in (default_synth, custom_synth)
        for construct in synth.stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == key
        for rule, reason in entry.data.items()
    }

    # THEN there are some, each with a reason a reviewer can read
    assert acknowledged
    assert all(len(reason) >= 40 for reason in acknowledged.values()), acknowledged


def test_an_unacknowledged_finding_fails_the_synth(tmp_path: Path):
    # GIVEN a throwaway app with the same plugins and an unencrypted queue without TLS enforcement
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Throwaway")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))

    # WHEN it is synthesized
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()

    # THEN the report names the queue's findings
    violations = {v["ruleName"] for p in _report(tmp_path)["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-SQS2", "AwsSolutions-SQS4", "Serverless-SQSRedrivePolicy"} <= violations
