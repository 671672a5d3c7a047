"""The promotion ladder's place in a policy (`ladder:`), parsed and checked at policy load.

A ladder is the environments a version climbs, in order: each has its target registered model, the aliases a
promotion there moves, what entering it requires and whether the gate runs again there. It lives in the policy of
the model versions are registered in (its first environment), so `load_policies` refuses a broken ladder with the
file and the line like any other policy problem:

    ladder:
      environments:
        - {name: dev, model: churn, aliases: [challenger]}
        - {name: staging, model: churn-staging, aliases: [challenger]}
        - name: prod
          model: churn-prod
          aliases: [champion]
          registry_uri: https://mlflow-prod.example.com   # optional: another MLflow server (none: the functions' own)
          credentials_secret: arn:aws:secretsmanager:eu-west-1:123456789012:secret:mlflow-prod-AbCdEf   # optional
          requires: {approval: true, min_hours: 24, min_challenger_hours: 12}   # at the rung below (staging)
          revalidate: false   # true: the gate runs again on the copy before its aliases move (same registry only)

Kept apart from `functions.domain.ladder` (which climbs it) so that `functions.domain.policy` can import the schema
without a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$")
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(mrk-[a-f0-9]{32}|[a-f0-9-]{36})$")


def _environment_name(name: str) -> str:
    if not _ENVIRONMENT.fullmatch(name):
        raise ValueError(f"environment {name!r} must be lower-case letters, digits, '_' or '-', starting with a letter")
    return name


def _secret_arn(arn: str) -> str:
    if not _SECRET_ARN.fullmatch(arn):
        raise ValueError(
            f"credentials_secret {arn!r} must be a Secrets Manager secret's complete ARN (with its 6-character "
            "suffix): the aliases function is granted that secret and no other"
        )
    return arn


def _key_arn(arn: str) -> str:
    if not _KEY_ARN.fullmatch(arn):
        raise ValueError(f"credentials_key {arn!r} must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
    return arn


def _alias(alias: str) -> str:
    from functions.domain.policy import check_alias  # the policy module imports this one: resolved at call time

    return check_alias(alias)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RungRequirements(_Strict):
    """What a version needs to enter a rung, besides a passed verdict at the rung below (always required)."""

    approval: bool = False
    """A named approver (`python -m ops promote ... --approver NAME`)."""
    min_hours: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    """Hours the version must have stood at the rung below (since it passed there, or was copied there)."""
    min_challenger_hours: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    """Hours the version must have held `challenger` at the rung below (its last tenure, from that alias's history),
    and `challenger` never rolled back away from it there."""


class Rung(_Strict):
    name: Annotated[str, AfterValidator(_environment_name)]
    model: str | None = Field(default=None, min_length=1)
    """The registered model of this environment (`catalog.schema.model` on Unity Catalog)."""
    registry_uri: str | None = Field(default=None, min_length=1)
    """Another registry (tracking server, workspace) for this environment; none: the functions' own."""
    credentials_secret: Annotated[str, AfterValidator(_secret_arn)] | None = None
    """The Secrets Manager secret (complete ARN) with the credentials of `registry_uri`, an http(s) MLflow server:
    `{"username", "password"}` or `{"token"}`, as the functions' own secret. None: that server gets the functions' own
    credentials (the same secret, or none)."""
    credentials_key: Annotated[str, AfterValidator(_key_arn)] | None = None
    """The customer managed KMS key that encrypts `credentials_secret` (none: aws/secretsmanager, no grant needed)."""
    aliases: list[Annotated[str, AfterValidator(_alias)]] = Field(default_factory=lambda: ["challenger"], min_length=1)
    """Moved in this environment's model when a version is promoted into it (the first: by its own verdicts)."""
    source: Annotated[str, AfterValidator(_environment_name)] | None = Field(default=None, alias="from")
    """The rung below (`from:`); default: the environment listed before this one."""
    requires: RungRequirements = Field(default_factory=RungRequirements)
    revalidate: bool = False
    """True: the copy's carried verdict is cleared and the gate runs again there (the target model's policy)."""


class LadderRule(_Strict):
    environments: list[Rung] = Field(min_length=2)

    @model_validator(mode="after")
    def _a_ladder(self) -> LadderRule:
        names = [rung.name for rung in self.environments]
        listed = ", ".join(names)
        seen: dict[str, int] = {}
        for index, rung in enumerate(self.environments):
            if rung.name in seen:
                raise ValueError(f"environment {rung.name} is listed twice")
            seen[rung.name] = index
            if rung.model is None:
                raise ValueError(f"environment {rung.name} has no target: set its model")
            if index == 0:
                if (
                    rung.source is not None
                    or rung.requires != RungRequirements()
                    or rung.registry_uri
                    or rung.credentials_secret
                    or rung.revalidate
                ):
                    raise ValueError(
                        f"environment {rung.name} is the first: versions are registered and validated there, so it "
                        "takes no from, requires, registry_uri, credentials_secret or revalidate"
                    )
                continue
            if rung.credentials_secret and not (rung.registry_uri or "").startswith(("https://", "http://")):
                raise ValueError(
                    f"environment {rung.name}: credentials_secret is for a rung on another http(s) MLflow server "
                    "(registry_uri); a SageMaker tracking server is reached with the aliases function's role, and "
                    "Databricks with the functions' own secret"
                )
            if rung.credentials_key and not rung.credentials_secret:
                raise ValueError(f"environment {rung.name}: credentials_key is the key of credentials_secret; set both")
            if rung.registry_uri and rung.revalidate:
                raise ValueError(
                    f"environment {rung.name} is in another registry ({rung.registry_uri}): the gate cannot run again "
                    "there (the validate function reads its own registry); set revalidate: false"
                )
            if rung.source is not None and rung.source not in names:
                raise ValueError(
                    f"environment {rung.name}: from {rung.source} is no environment of this ladder ({listed})"
                )
            if rung.source is not None and rung.source not in seen or rung.source == rung.name:
                raise ValueError(
                    f"environment {rung.name}: from {rung.source} is not below it: a ladder cannot loop (a cycle); "
                    "list environments from the first to the last"
                )
        targets: dict[tuple[str | None, str], str] = {}
        for rung in self.environments:
            key = (rung.registry_uri, rung.model or "")
            if key in targets:
                raise ValueError(
                    f"environments {targets[key]} and {rung.name} both target {rung.model}: a version would climb back "
                    "into a model it left (a cycle)"
                )
            targets[key] = rung.name
        return self

    def rung(self, name: str) -> Rung | None:
        return next((rung for rung in self.environments if rung.name == name), None)

    def below(self, rung: Rung) -> Rung | None:
        """The rung a version enters `rung` from (None for the first)."""
        index = self.environments.index(rung)
        if index == 0:
            return None
        return self.rung(rung.source) if rung.source else self.environments[index - 1]


def ladder_problems(ladders: Mapping[str, tuple[LadderRule, Collection[str]]]) -> dict[str, str]:
    """Problems between ladders and the policies holding them, by policy name.

    `ladders` maps a policy's name (its model, or `default`) to its ladder and the aliases its `promotion` moves.
    """
    problems: dict[str, str] = {}
    owners: dict[tuple[str | None, str], str] = {}
    credentials: dict[str, tuple[tuple[str | None, str | None], str]] = {}
    for name, (ladder, promoted) in sorted(ladders.items()):
        first = ladder.environments[0]
        if name == "default":
            problems[name] = "a ladder names its models: declare it in policies/<model>.yaml, not the default policy"
            continue
        if first.model != name:
            problems[name] = (
                f"the first environment ({first.name}) targets {first.model}, but this policy is for {name}: a ladder "
                "starts at the model its versions are registered in"
            )
            continue
        unmoved = sorted(set(first.aliases) - set(promoted))
        if unmoved:
            problems[name] = (
                f"environment {first.name} lists {', '.join(unmoved)}, which promotion.aliases does not move: the "
                "first environment's aliases are its verdicts' (promotion.aliases)"
            )
            continue
        for rung in ladder.environments:
            key = (rung.registry_uri, rung.model or "")
            if key in owners and owners[key] != name:
                problems[name] = f"environment {rung.name} targets {rung.model}, already on the ladder of {owners[key]}"
                break
            owners[key] = name
            if rung.registry_uri is None:
                continue
            secret = (rung.credentials_secret, rung.credentials_key)
            known, where = credentials.setdefault(rung.registry_uri, (secret, f"{name}'s environment {rung.name}"))
            if known != secret:
                problems[name] = (
                    f"environment {rung.name} reaches {rung.registry_uri} with other credentials than {where}: one "
                    "registry, one credentials_secret (and credentials_key)"
                )
                break
    return problems


def rung_credentials(ladders: Iterable[LadderRule]) -> dict[str, tuple[str, str]]:
    """The credentials secret and its key ("": aws/secretsmanager) of each other registry the ladders name with one,
    by `registry_uri` (`ladder_problems` refuses one registry with two)."""
    return {
        rung.registry_uri: (rung.credentials_secret, rung.credentials_key or "")
        for ladder in ladders
        for rung in ladder.environments
        if rung.registry_uri and rung.credentials_secret
    }
