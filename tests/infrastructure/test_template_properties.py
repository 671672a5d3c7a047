"""Rules AWS applies when it deploys or runs the template, checked across every resource of the synthesized stacks.

Each test walks the whole template (not one construct), so a resource added later meets the same rule. The README's
"Deploy-time rules checked" lists them with their sources.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infrastructure.conftest import Synth, synthesize

SYNTHS = ["default_synth", "custom_synth"]

# EventBridge input transformer rules (https://docs.aws.amazon.com/eventbridge/latest/userguide/
# eb-transform-target-input.html and the API reference's InputTransformer): the template's placeholders are
# <name> for a key of InputPathsMap or one of these predefined, reserved variables; at most 100 keys, none starting
# with "AWS" (CloudFormation's schema: keys of letters and digits, CDK adds '-' and '_'), values JSON paths in dot
# notation; the template is 1 to 8192 characters.
PREDEFINED_PLACEHOLDERS = frozenset(
    {
        "aws.events.rule-arn",
        "aws.events.rule-name",
        "aws.events.event.ingestion-time",
        "aws.events.event",
        "aws.events.event.json",
    }
)
MAX_INPUT_PATHS = 100
MAX_INPUT_TEMPLATE_LENGTH = 8192
_INPUT_PATH_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_INPUT_PATH = re.compile(r"^\$(\.[A-Za-z0-9_\-/*]+|\[\d+\])*$")
_PLACEHOLDER = re.compile(r"<([^<>]*)>")


def flatten(value: Any) -> str:
    """A CloudFormation string with each intrinsic function replaced by a marker that holds no angle brackets."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(flatten(part) for part in parts)
    if isinstance(value, dict) and len(value) == 1:
        return f"{{{next(iter(value))}}}"
    raise ValueError(f"not a CloudFormation string: {value!r}")


def input_transformer_problems(transformer: dict[str, Any]) -> list[str]:
    """What EventBridge would refuse in one target's InputTransformer (empty: nothing)."""
    paths: dict[str, str] = transformer.get("InputPathsMap", {})
    template = flatten(transformer["InputTemplate"])
    problems = []
    if len(paths) > MAX_INPUT_PATHS:
        problems.append(f"{len(paths)} InputPathsMap entries (at most {MAX_INPUT_PATHS})")
    for key, path in paths.items():
        if not _INPUT_PATH_KEY.fullmatch(key) or key.upper().startswith("AWS") or key in PREDEFINED_PLACEHOLDERS:
            problems.append(f"InputPathsMap key {key!r} is not allowed")
        if not isinstance(path, str) or not _INPUT_PATH.fullmatch(path):
            problems.append(f"InputPathsMap[{key!r}] = {path!r} is not a JSON path in dot notation")
    if not 1 <= len(template) <= MAX_INPUT_TEMPLATE_LENGTH:
        problems.append(f"InputTemplate is {len(template)} characters (1 to {MAX_INPUT_TEMPLATE_LENGTH})")
    for name in _PLACEHOLDER.findall(template):
        if name not in paths and name not in PREDEFINED_PLACEHOLDERS:
            problems.append(f"InputTemplate placeholder <{name}> is neither an InputPathsMap key nor predefined")
    return problems


def rule_targets(synth: Synth) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, rule in synth.resources("AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            yield f"{logical_id}/{target['Id']}", target


def properties_anywhere(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every (path, key, value) of every mapping inside `value`, however deep."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key, item
            yield from properties_anywhere(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from properties_anywhere(item, f"{path}/{index}")


# --- EventBridge input transformers ---------------------------------------------------------------------------------


def test_the_placeholder_check_catches_what_eventbridge_refuses():
    # GIVEN input transformers EventBridge refuses: a literal <you> (the old approval hint), a reserved key, too many
    # keys, a bracket-notation path
    you = {"InputPathsMap": {"model": "$.detail.model"}, "InputTemplate": '"<model>: --approver <you>"'}
    reserved = {"InputPathsMap": {"AWSRegion": "$.region"}, "InputTemplate": '"<AWSRegion>"'}
    crowded = {"InputPathsMap": {f"k{i}": "$.detail" for i in range(101)}, "InputTemplate": '"x"'}
    brackets = {"InputPathsMap": {"k": "$['detail']"}, "InputTemplate": '"<k>"'}
    # AND one it accepts, with a predefined placeholder
    fine = {"InputPathsMap": {"model": "$.detail.model"}, "InputTemplate": '"<model> by <aws.events.rule-name>"'}

    # WHEN we check them
    # THEN each refused one has its problem named, and the accepted one has none
    assert input_transformer_problems(you) == [
        "InputTemplate placeholder <you> is neither an InputPathsMap key nor predefined"
    ]
    assert input_transformer_problems(reserved) == ["InputPathsMap key 'AWSRegion' is not allowed"]
    assert input_transformer_problems(crowded) == ["101 InputPathsMap entries (at most 100)"]
    assert input_transformer_problems(brackets) == [
        "InputPathsMap['k'] = \"$['detail']\" is not a JSON path in dot notation"
    ]
    assert input_transformer_problems(fine) == []


@pytest.mark.parametrize("synth_name", SYNTHS)
def test_every_input_template_uses_only_placeholders_eventbridge_can_fill(synth_name: str, request):
    # GIVEN every rule target of a synthesized stack
    synth: Synth = request.getfixturevalue(synth_name)
    transformers = {where: t["InputTransformer"] for where, t in rule_targets(synth) if "InputTransformer" in t}

    # WHEN we check each input transformer against EventBridge's rules
    problems = {where: input_transformer_problems(t) for where, t in transformers.items()}

    # THEN PutTargets would accept every one (the notification rules' three at least are among them)
    assert len(transformers) >= len(synth.autopilot.monitoring.notification_rules)
    assert {where: found for where, found in problems.items() if found} == {}


# --- KMS identifiers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("synth_name", SYNTHS)
def test_no_property_anywhere_is_an_empty_kms_key_identifier(synth_name: str, request):
    # GIVEN every resource of a synthesized stack
    synth: Synth = request.getfixturevalue(synth_name)

    # WHEN we look for KMS key properties (KmsKeyIdentifier, KmsKeyId, KmsMasterKeyId, KMSMasterKeyID, ...) at any depth
    kms_properties = [
        (logical_id, path, key, value)
        for logical_id, resource in synth.template_json["Resources"].items()
        for path, key, value in properties_anywhere(resource.get("Properties", {}))
        if re.fullmatch(r"(?i)kms.*key.*(id|identifier|arn)", key)
    ]

    # THEN none is an empty string: CloudFormation passes "" on, and the service refuses it (or reads it as a key
    # called ""); an archive under an AWS-owned key must leave the property out (aws/aws-cdk#37847)
    assert kms_properties, "the stacks have KMS-encrypted resources: the walk must find their key properties"
    assert [(i, p, k) for i, p, k, v in kms_properties if v == ""] == []


# --- Lambda concurrency ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def webhooks_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize({"webhooks": "true"}, outdir=tmp_path_factory.mktemp("webhooks-cdk.out"))


def test_no_function_reserves_concurrency_unless_told_to(webhooks_synth: Synth, custom_synth: Synth):
    # GIVEN a stack with the webhook function at the defaults, and the custom one (webhookReservedConcurrency=10)
    # WHEN we read every function's reserved concurrency
    def reserved(synth: Synth) -> dict[str, int]:
        return {
            logical_id: function["Properties"]["ReservedConcurrentExecutions"]
            for logical_id, function in synth.resources("AWS::Lambda::Function").items()
            if "ReservedConcurrentExecutions" in function["Properties"]
        }

    # THEN the defaults reserve nothing: Lambda keeps 100 of the account's executions unreserved, so any reservation
    # fails the deployment in an account with a small concurrency quota (PutFunctionConcurrency); only the setting
    # reserves, on the webhook function alone
    assert webhooks_synth.autopilot.webhook is not None
    assert reserved(webhooks_synth) == {}
    assert reserved(custom_synth) == {custom_synth.logical_id(custom_synth.autopilot.webhook.function): 10}
