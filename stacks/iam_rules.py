"""What an enterprise asks of every IAM role a construct creates: a permissions boundary and a role-name prefix.

Both are applied as aspects, so they reach roles CDK creates on its own (a custom resource's provider, the bucket's
notifications handler) as well as the construct's. CDK's notifications handler and custom resource providers are
singletons of the stack, outside the construct that caused them: `RegistryAutopilot` passes those it added to the
stack in `others` (one the host stack had before belongs to the host and is left alone).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import jsii
from aws_cdk import Aspects, CfnResource, IAspect, Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from stacks.config import ConfigError

ROLE_NAME_MAX = 64
"""IAM's limit on a role's name (IAM User Guide, "IAM and AWS STS quotas": role name, 64 characters)."""
ROLE_NAME_PREFIX_MAX = 32
"""Leaves at least 32 characters for the part after the prefix: a readable id and a hash that keeps names unique."""
_ROLE_NAME = re.compile(r"^[\w+=,.@-]+$")
"""The characters IAM allows in a role name (CreateRole: RoleName pattern [\\w+=,.@-]+)."""
_HASH_LENGTH = 8
_ROLE_TYPE = "AWS::IAM::Role"


def check_role_name_prefix(prefix: str | None) -> str | None:
    if prefix is None:
        return None
    if (
        not isinstance(prefix, str)
        or not prefix
        or len(prefix) > ROLE_NAME_PREFIX_MAX
        or not _ROLE_NAME.fullmatch(prefix)
    ):
        raise ConfigError(
            f"prop 'role_name_prefix' must be 1 to {ROLE_NAME_PREFIX_MAX} characters of letters, digits and "
            f"'+=,.@_-' (IAM role names are at most {ROLE_NAME_MAX}); got {prefix!r}"
        )
    return prefix


def role_name(prefix: str, role: CfnResource) -> str:
    """`prefix` + the role's path in its stack (letters and digits, cut to fit) + a hash of stack name and path.

    IAM role names are unique in an account, across regions: the hash covers the stack's name (and its account and
    region when the stack is bound to them), so two stacks of the same app do not collide.
    """
    stack = Stack.of(role)
    ids = [scope.node.id for scope in role.node.scopes[len(stack.node.scopes) :]]
    bound = [value for value in (stack.account, stack.region) if not Token.is_unresolved(value)]
    digest = hashlib.sha256("/".join([*bound, stack.stack_name, *ids]).encode()).hexdigest()[:_HASH_LENGTH]
    readable = re.sub(r"[^A-Za-z0-9]", "", "".join(i for i in ids if i not in ("Default", "Resource")))
    room = ROLE_NAME_MAX - len(prefix) - _HASH_LENGTH - 1
    return f"{prefix}{readable[:room]}-{digest}"


@jsii.implements(IAspect)
class _RoleNames:
    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, iam.CfnRole):
            node.role_name = role_name(self._prefix, node)
        elif isinstance(node, CfnResource) and node.cfn_resource_type == _ROLE_TYPE:
            # A custom resource provider's role is a plain CfnResource of this type.
            node.add_property_override("RoleName", role_name(self._prefix, node))


def apply_iam_rules(
    scope: Construct,
    *,
    others: Iterable[IConstruct],
    permissions_boundary: iam.IManagedPolicy | str | None,
    role_name_prefix: str | None,
) -> iam.IManagedPolicy | None:
    """Boundary and names on every role under `scope` and under each of `others`; returns the boundary policy."""
    targets = [scope, *others]
    boundary = _boundary_policy(scope, permissions_boundary)
    for target in targets:
        if boundary is not None:
            iam.PermissionsBoundary.of(target).apply(boundary)
        if role_name_prefix is not None:
            Aspects.of(target).add(_RoleNames(role_name_prefix))
    return boundary


def _boundary_policy(scope: Construct, boundary: iam.IManagedPolicy | str | None) -> iam.IManagedPolicy | None:
    if boundary is None or not isinstance(boundary, str):
        return boundary
    if boundary.startswith("arn:"):
        if not re.fullmatch(r"arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]+", boundary):
            raise ConfigError(
                f"prop 'permissions_boundary' must be a managed policy ARN (arn:aws:iam::<account>:policy/<name>) or "
                f"name; got {boundary!r}"
            )
        return iam.ManagedPolicy.from_managed_policy_arn(scope, "PermissionsBoundary", boundary)
    if not re.fullmatch(r"[\w+=,.@-]{1,128}", boundary):
        raise ConfigError(f"prop 'permissions_boundary' must be a managed policy ARN or name; got {boundary!r}")
    return iam.ManagedPolicy.from_managed_policy_name(scope, "PermissionsBoundary", boundary)
