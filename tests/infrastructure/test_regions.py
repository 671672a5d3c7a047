"""Region-bound features: SnapStart and Lambda function URLs exist in some regions only (stacks/regions.py).

With a `region` the synth decides (and refuses an explicit request the region cannot honour, naming the key);
without one, CloudFormation conditions on `AWS::Region` decide at deploy time.
"""

from __future__ import annotations

import pytest
from aws_cdk import CfnResource
from cfnlint.helpers import REGIONS
from cfnlint.rules.resources.lmbd.SnapStartSupported import SnapStartSupported
from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

from stacks.config import ConfigError, RegistryConfig, SnapStart
from stacks.regions import FUNCTION_URL_REGIONS, FUNCTION_URLS_UNSUPPORTED, SNAP_START_REGIONS
from tests.infrastructure.conftest import NO_SNAP_START_REGION, Synth
from tests.infrastructure.template_queries import condition_holds


def test_region_lists_are_cfn_lints_own_data():
    # GIVEN cfn-lint's data: the regions of its SnapStart rule (E2530) and the per-region resource schemas (E3006)
    snap_start = set(SnapStartSupported().regions)
    function_urls = {r for r in REGIONS if "AWS::Lambda::Url" in PROVIDER_SCHEMA_MANAGER.get_resource_types(region=r)}

    # WHEN we compare them with the lists the synth uses
    # THEN they are the same (an upgraded cfn-lint that knows better fails here first), but for the regions where
    # Lambda's guide says function URLs are not supported: the guide wins where cfn-lint still lists one
    assert snap_start == SNAP_START_REGIONS
    assert function_urls - FUNCTION_URLS_UNSUPPORTED == FUNCTION_URL_REGIONS
    assert FUNCTION_URLS_UNSUPPORTED.isdisjoint(FUNCTION_URL_REGIONS)
    # AND Lambda's guide agrees for SnapStart: every commercial region but New Zealand and Taipei
    assert {"ap-southeast-6", "ap-east-2"}.isdisjoint(SNAP_START_REGIONS)


@pytest.mark.parametrize(
    ("condition", "regions"),
    [("SnapStartAvailable", SNAP_START_REGIONS), ("FunctionUrlsAvailable", FUNCTION_URL_REGIONS)],
)
def test_without_a_region_the_conditions_hold_exactly_where_the_feature_exists(
    custom_synth: Synth, condition: str, regions: frozenset[str]
):
    # GIVEN a stack synthesized without a region (webhooks on, snapStart auto)
    template = custom_synth.template_json

    # WHEN we evaluate the condition in every region cfn-lint knows
    holds = {r for r in REGIONS if condition_holds(template, template["Conditions"][condition], r)}

    # THEN it is true exactly in the feature's regions, and within CloudFormation's 10 conditions per Fn::Or
    assert holds == regions
    assert all(len(group.get("Fn::Or", [group])) <= 10 for group in template["Conditions"][condition]["Fn::Or"])
    assert len(template["Conditions"][condition]["Fn::Or"]) <= 10


def test_without_a_region_every_webhook_resource_exists_only_where_function_urls_do(custom_synth: Synth):
    # GIVEN the webhook resources of a stack without a region
    resources = custom_synth.template_json["Resources"]
    webhook_ids = {
        custom_synth.logical_id(c) for c in custom_synth.autopilot.webhook.node.find_all() if isinstance(c, CfnResource)
    }

    # WHEN we read which resources and outputs carry a condition
    conditioned = {logical_id for logical_id, r in resources.items() if r.get("Condition") == "FunctionUrlsAvailable"}
    outputs = custom_synth.template_json["Outputs"]

    # THEN exactly the webhook's (the URL among them) and their two outputs: in a region without function URLs the
    # stack deploys without the endpoint instead of failing on AWS::Lambda::Url
    assert webhook_ids
    assert conditioned == webhook_ids
    assert custom_synth.logical_id(custom_synth.autopilot.webhook.url) in conditioned
    assert {k for k, o in outputs.items() if o.get("Condition") == "FunctionUrlsAvailable"} == {
        "WebhookUrl",
        "WebhookSecretArn",
    }


def test_with_a_region_that_has_both_the_template_needs_no_condition(regional_synth: Synth):
    # GIVEN a stack for eu-west-1 with snapStart=true and webhooks=true
    template = regional_synth.template_json

    # WHEN we read its conditions, its route functions and its function URL
    functions = [
        template["Resources"][regional_synth.logical_id(p.function)]
        for p in regional_synth.autopilot.pipelines.values()
    ]
    [url] = regional_synth.resources("AWS::Lambda::Url").values()

    # THEN SnapStart is plainly on, the URL plainly there, and the stack is bound to that region
    assert "Conditions" not in template
    assert all(f["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"} for f in functions)
    assert "Condition" not in url
    assert regional_synth.stack.region == "eu-west-1"


def test_with_a_region_without_snap_start_the_functions_run_on_demand(no_snap_start_region_synth: Synth):
    # GIVEN a stack for Asia Pacific (New Zealand) with snapStart at its default (auto)
    synth = no_snap_start_region_synth

    # WHEN we read its functions and their event source mappings
    functions = synth.resources("AWS::Lambda::Function").values()

    # THEN none has SnapStart, no alias is published, and the queues invoke the functions themselves
    assert synth.stack.config.snap_start_mode is SnapStart.OFF
    assert all("SnapStart" not in f["Properties"] for f in functions)
    assert synth.resources("AWS::Lambda::Alias") == {}
    for pipeline in synth.autopilot.pipelines.values():
        mapping = synth.template_json["Resources"][synth.logical_id(pipeline.event_source_mapping)]
        assert mapping["Properties"]["FunctionName"] == {"Ref": synth.logical_id(pipeline.function)}


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"snapStart": "true"}, r"'snapStart': true needs the deployment's region in 'region'"),
        (
            {"snapStart": "true", "region": NO_SNAP_START_REGION},
            rf"'snapStart': Lambda SnapStart is not available in {NO_SNAP_START_REGION}",
        ),
        (
            {"webhooks": "true", "region": NO_SNAP_START_REGION},
            rf"'webhooks': Lambda function URLs \(AWS::Lambda::Url\) are not available in {NO_SNAP_START_REGION}",
        ),
        ({"snapStart": "sometimes"}, r"'snapStart' must be true, false or auto"),
        ({"region": "Ireland"}, r"'region' must be an AWS region such as eu-west-1"),
    ],
)
def test_what_a_region_cannot_honour_is_refused_naming_the_key(context: dict, message: str):
    # GIVEN a context asking for a region-bound feature where it cannot be had (or a malformed value)
    # WHEN it is read
    # THEN a ConfigError names the key
    with pytest.raises(ConfigError, match=message):
        RegistryConfig.from_mapping(context)


@pytest.mark.parametrize(
    ("context", "mode"),
    [
        ({}, SnapStart.WHERE_AVAILABLE),
        ({"snapStart": "auto", "region": "eu-west-1"}, SnapStart.ON),
        ({"snapStart": True, "region": "eu-west-1"}, SnapStart.ON),
        ({"region": NO_SNAP_START_REGION}, SnapStart.OFF),
        ({"snapStart": "false"}, SnapStart.OFF),
        ({"snapStart": False, "region": "eu-west-1"}, SnapStart.OFF),
    ],
)
def test_snap_start_is_on_wherever_it_exists_unless_turned_off(context: dict, mode: SnapStart):
    assert RegistryConfig.from_mapping(context).snap_start_mode is mode
