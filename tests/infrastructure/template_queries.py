"""Questions the template tests ask of a synthesized CloudFormation template: what a value refers to, whether a region
condition holds, and which IAM statements and actions a role has. Plain Python over the template's JSON (no CDK import),
so the integration tests that edit a template use them too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.infrastructure.conftest import Synth


def references(value: Any) -> set[str]:
    """Logical ids that a value refers to through Ref or Fn::GetAtt (anywhere inside it)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str) and not arg.startswith("AWS::"):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            else:
                found |= references(arg)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def condition_holds(template: dict[str, Any], expression: Any, region: str) -> bool:
    """Evaluate a region condition (Fn::Or / Fn::Equals on AWS::Region / Condition) as CloudFormation would."""
    if isinstance(expression, dict) and "Condition" in expression:
        return condition_holds(template, template["Conditions"][expression["Condition"]], region)
    [(function, arguments)] = expression.items()
    if function == "Fn::Or":
        return any(condition_holds(template, argument, region) for argument in arguments)
    if function == "Fn::Equals":
        values = [region if a == {"Ref": "AWS::Region"} else a for a in arguments]
        return values[0] == values[1]
    raise ValueError(f"not a region condition: {expression!r}")


def as_list(value: Any) -> list:
    """A policy field that may be one item or a list of them, as a list."""
    return value if isinstance(value, list) else [value]


def policy_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(document["Statement"])


def role_statements(synth: Synth, role: Any) -> list[dict[str, Any]]:
    """Every statement of every IAM policy attached to `role` (a CDK role)."""
    return role_statements_by_id(synth, synth.logical_id(role))


def role_statements_by_id(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy_statements(policy["Properties"]["PolicyDocument"])
    ]


def statement_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in as_list(statement["Action"])}
