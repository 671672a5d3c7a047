"""A deployed registry-autopilot stack, found by its CloudFormation outputs, and the AWS errors a user can fix.

Every AWS-facing replay command (`archive`, `send`, `record`) and `python -m ops --stack` (`ops.target`) start
here: a boto3 session with the usual credential and region chain (`--profile`, `--region`, `AWS_PROFILE`,
`AWS_REGION`, `AWS_ENDPOINT_URL`...), the stack's outputs (`DescribeStacks`; their names are in `stacks.outputs`),
and `AwsProblem` for what the user can fix: no credentials, expired credentials, a wrong stack name or region, a
stack deployed before an output existed. The command line prints an `AwsProblem` as one line and exits with
status 2.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_NOT_RECOGNISED = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
_CREDENTIALS_HINT = (
    "configure credentials for the account the stack is deployed in (aws configure, aws sso login, AWS_PROFILE or "
    "--profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
)


class AwsProblem(Exception):
    """Something the user can fix before trying again; the message says what and how."""


def explain(error: Exception, *, doing: str) -> AwsProblem:
    """The `AwsProblem` for a botocore error raised while `doing` something (e.g. "start the replay")."""
    if isinstance(error, NoCredentialsError):
        return AwsProblem(f"no AWS credentials found, so cannot {doing}: {_CREDENTIALS_HINT}")
    if isinstance(error, PartialCredentialsError | ProfileNotFound):
        return AwsProblem(f"cannot {doing}: {error}; {_CREDENTIALS_HINT}")
    if isinstance(error, NoRegionError):
        return AwsProblem(f"cannot {doing}: no AWS region; pass --region or set AWS_REGION")
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        return AwsProblem(f"cannot {doing}: {error} (check the network, --region and AWS_ENDPOINT_URL)")
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        if code in _EXPIRED:
            return AwsProblem(f"cannot {doing}: the AWS credentials have expired ({message}); refresh them")
        if code in _NOT_RECOGNISED:
            return AwsProblem(f"cannot {doing}: AWS does not accept these credentials ({code}: {message})")
        if code in _DENIED:
            return AwsProblem(f"not allowed to {doing}: {message}")
        return AwsProblem(f"AWS refused to {doing}: {code}: {message}")
    return AwsProblem(f"cannot {doing}: {type(error).__name__}: {error}")


@contextmanager
def calling(doing: str) -> Iterator[None]:
    """Turn botocore's errors inside the block into an `AwsProblem` saying what was being done."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise explain(error, doing=doing) from error


def error_code(error: BaseException) -> str:
    """The AWS error code of a `ClientError` (or of the error an `AwsProblem` was raised from), else ""."""
    cause = error if isinstance(error, ClientError) else error.__cause__
    return cause.response.get("Error", {}).get("Code", "") if isinstance(cause, ClientError) else ""


@dataclass
class DeployedStack:
    """One deployed stack: its name, region, outputs, and boto3 clients in its account and region."""

    name: str
    region: str
    outputs: Mapping[str, str]
    session: Any = field(repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def output(self, key: str) -> str:
        """An output's value; `AwsProblem` when the deployed stack does not have it."""
        value = self.outputs.get(key)
        if not value:
            raise AwsProblem(
                f"stack {self.name!r} in {self.region} has no output {key!r}: it was deployed by an older version of "
                "registry-autopilot; deploy this version (make deploy) and try again"
            )
        return value

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, config=Config(retries={"max_attempts": 5, "mode": "standard"})
            )
        return self._clients[service]


def open_stack(name: str, *, region: str | None = None, profile: str | None = None) -> DeployedStack:
    """Find stack `name` and read its outputs; `AwsProblem` for a missing stack, credentials or region."""
    with calling("open an AWS session"):
        session = boto3.Session(profile_name=profile, region_name=region)
    if not session.region_name:
        raise AwsProblem("no AWS region: pass --region or set AWS_REGION to the region the stack is deployed in")
    try:
        with calling(f"read CloudFormation stack {name!r}"):
            stacks = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except AwsProblem as problem:
        if error_code(problem) == "ValidationError" and "does not exist" in str(problem.__cause__):
            raise AwsProblem(
                f"there is no CloudFormation stack named {name!r} in {session.region_name}: check --stack (the "
                "stackName context key, RegistryAutopilot by default) and --region"
            ) from None
        raise
    stack = stacks[0]
    outputs = {item["OutputKey"]: item.get("OutputValue", "") for item in stack.get("Outputs", [])}
    return DeployedStack(name=stack["StackName"], region=session.region_name, outputs=outputs, session=session)
