"""Validation policies: one YAML file per registered model in `policies/`, plus `default.yaml`.

A policy says which metrics a version must show (and within which range), how it must compare with the
version that holds an alias (the champion), which files it must ship, and which lineage it must record.
`load_policies` reads a folder and refuses anything it does not understand with the file, the line and
what is wrong: the stack calls it at synth and `make test` runs it, so a broken policy never deploys.

    finite_metrics: true               # any NaN or infinite metric of the version fails it, listed or not
    metrics:
      accuracy: {min: 0.85}            # required unless `required: false`; NaN and infinity fail
      latency_ms: {max: 120}
    compare:
      alias: champion                  # the version holding it is the baseline; none yet: skipped
      metric: accuracy
      direction: higher                # or lower (lower is better)
      min_improvement: 0.0             # inclusive; `improvement: relative` reads it as a fraction
      gate: true                       # false: it only ranks versions for the aliases, never fails a verdict
    artifacts:
      signature: true
      environment: true                # one of requirements.txt, conda.yaml, python_env.yaml;
                                       # or a list of files that must all be there: [requirements.txt]
    lineage:
      run_tags: [data.version]
      dataset_inputs: false
    promotion:
      aliases: {challenger: always, champion: auto}   # always | auto | approval | manual
      stages: {champion: Production}                  # legacy stage mirror, off unless named
    proof: smoke                       # off (the default) | smoke: load and predict in the declared environment;
                                       # or {level: smoke, missing_example: skip}
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from functions.domain.ladder_policy import LadderRule, ladder_problems
from functions.domain.reference_policy import ReferenceRule, reference_problem

DEFAULT_POLICY = "default"
POLICY_SUFFIX = ".yaml"
MAX_POLICY_BYTES = 256 * 1024


class PolicyError(ValueError):
    """A policy file that cannot be used; the message starts with `file:line:`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION_LIKE = re.compile(r"^[vV]\d+$")


def check_alias(alias: str) -> str:
    """MLflow's alias rules, applied before anything moves: letters, digits, '_' and '-'; not `latest`, not `v3`."""
    if not _ALIAS.fullmatch(alias):
        raise ValueError(f"alias {alias!r} must be 1 to 255 letters, digits, '_' or '-'")
    if alias.lower() == "latest" or _VERSION_LIKE.fullmatch(alias):
        raise ValueError(f"alias {alias!r} is reserved by MLflow (latest, or a version like v3)")
    return alias


Alias = Annotated[str, AfterValidator(check_alias)]
AliasMode = Literal["always", "auto", "approval", "manual"]
_DEFAULT_ALIASES: dict[str, AliasMode] = {"challenger": "always"}


class MetricRule(_Strict):
    min: FiniteFloat | None = None
    max: FiniteFloat | None = None
    required: bool = True

    @model_validator(mode="after")
    def _range_is_possible(self) -> MetricRule:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"impossible range: min {self.min} is greater than max {self.max}")
        return self


class CompareRule(_Strict):
    alias: Alias = "champion"
    metric: str = Field(min_length=1)
    direction: Literal["higher", "lower"] = "higher"
    min_improvement: FiniteFloat = Field(default=0.0, ge=0)
    improvement: Literal["absolute", "relative"] = "absolute"
    gate: bool = True
    """False: the comparison ranks versions for `auto` and `approval` aliases but never fails the verdict, so a version
    worse than the holder passes (and stays where it is)."""


class ArtifactRule(_Strict):
    signature: bool = False
    environment: bool | list[Annotated[str, Field(min_length=1)]] = True
    """True: one of requirements.txt, conda.yaml, python_env.yaml; a list: every file named."""


class LineageRule(_Strict):
    run_tags: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    dataset_inputs: bool = False


class PromotionRule(_Strict):
    """Which aliases a passed version gets, and how.

    - always: on every pass, unless the version is worse than the holder (an older verdict arriving late);
    - auto: on a pass that also beats the holder under `compare` (its min_improvement included);
    - approval: like auto, but the version is only marked pending until a `Promotion Requested` names an approver;
    - manual: only by a `Promotion Requested`.
    """

    aliases: dict[Alias, AliasMode] = Field(default_factory=lambda: _DEFAULT_ALIASES.copy())
    stages: dict[Alias, Literal["Staging", "Production"]] = Field(default_factory=dict)
    """Legacy workspace registries: mirror an alias to a stage (deprecated by MLflow; off by default)."""


ProofLevel = Literal["off", "smoke"]


class ProofRule(_Strict):
    """Whether the gate proves the model itself (functions.domain.proof): `smoke` loads it with its flavor in the
    environment it declares and predicts on its saved input example, in a process of its own.

    Off by default (docs/policies-and-aliases.md, "Proving a model", says why); `proof: smoke` is the short form."""

    level: ProofLevel = "off"
    missing_example: Literal["fail", "skip"] = "fail"
    """A model without a saved input example: a failed check (`no_input_example`), or a skipped proof."""

    @property
    def enabled(self) -> bool:
        return self.level != "off"


class Policy(_Strict):
    finite_metrics: bool = True
    """Every metric the version's logged model, run or `metrics.json` holds must be a finite number, listed or not:
    a NaN or an infinity (a diverged training run) fails the verdict. False: only the listed metrics are checked."""
    metrics: dict[Annotated[str, Field(min_length=1)], MetricRule] = Field(default_factory=dict)
    compare: CompareRule | None = None
    artifacts: ArtifactRule = Field(default_factory=ArtifactRule)
    lineage: LineageRule = Field(default_factory=LineageRule)
    promotion: PromotionRule = Field(default_factory=PromotionRule)
    proof: ProofRule = Field(default_factory=ProofRule)

    @field_validator("proof", mode="before")
    @classmethod
    def _proof_short_form(cls, value: object) -> object:
        # `proof: smoke` / `proof: off`; YAML 1.1 reads a bare `off` as False (and `on` as True, refused below).
        if value is False:
            return {"level": "off"}
        if isinstance(value, str):
            return {"level": value}
        if value is True:
            raise ValueError("write `smoke` or `off` (a bare `on`/`true` does not say which proof)")
        return value

    ladder: LadderRule | None = None
    """The environments this model's versions climb (`functions.domain.ladder_policy`); none: one model only."""
    reference: ReferenceRule | None = None
    """A platform dataset the candidate and the compared alias's holder are scored on (`functions.domain.reference`);
    the comparison then uses those scores, not the self-reported metric."""

    @model_validator(mode="after")
    def _reference_fits(self) -> Policy:
        if self.reference is not None:
            compare = (self.compare.metric, self.compare.direction) if self.compare else None
            problem = reference_problem(self.reference, proof_enabled=self.proof.enabled, compare=compare)
            if problem:
                raise ValueError(f"reference: {problem}")
        return self


@dataclass(frozen=True)
class LoadedPolicy:
    name: str
    """The registered model it applies to, or `default`."""
    file: str
    sha256: str
    policy: Policy

    @property
    def identity(self) -> str:
        return f"{self.file}@sha256:{self.sha256[:12]}"


@dataclass(frozen=True)
class PolicySet:
    policies: dict[str, LoadedPolicy]

    def for_model(self, model_name: str) -> LoadedPolicy:
        return self.policies.get(model_name) or self.policies[DEFAULT_POLICY]

    @property
    def ladders(self) -> list[LadderRule]:
        return [loaded.policy.ladder for loaded in self.policies.values() if loaded.policy.ladder is not None]


def load_policies(folder: Path) -> PolicySet:
    """Read and check every `*.yaml` in `folder`; raises `PolicyError` naming the file and line."""
    if not folder.is_dir():
        raise PolicyError(f"{folder}: the policies folder does not exist")
    policies = {}
    for path in sorted(folder.glob(f"*{POLICY_SUFFIX}")):
        loaded = load_policy_file(path)
        policies[loaded.name] = loaded
    if DEFAULT_POLICY not in policies:
        raise PolicyError(f"{folder / (DEFAULT_POLICY + POLICY_SUFFIX)}: missing; every deployment needs a default")
    ladders = {n: (p.policy.ladder, p.policy.promotion.aliases) for n, p in policies.items() if p.policy.ladder}
    for name, problem in ladder_problems(ladders).items():
        raise PolicyError(f"{folder / policies[name].file}:1: ladder: {problem}")
    return PolicySet(policies)


def load_policy_file(path: Path) -> LoadedPolicy:
    content = path.read_bytes()
    if len(content) > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}:1: larger than {MAX_POLICY_BYTES} bytes")
    return LoadedPolicy(
        name=path.name[: -len(POLICY_SUFFIX)],
        file=path.name,
        sha256=hashlib.sha256(content).hexdigest(),
        policy=parse_policy(content.decode("utf-8", errors="replace"), source=str(path)),
    )


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise PolicyError(f"{source}:{line}: not valid YAML: {getattr(error, 'problem', error)}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise PolicyError(f"{source}:1: a policy is a mapping (metrics, compare, artifacts, lineage)")
    try:
        return Policy.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        location = [str(part) for part in first["loc"]]
        line = _line_of(root, location)
        where = ".".join(location) or "policy"
        raise PolicyError(f"{source}:{line}: {where}: {_message(first)}") from None


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return str(error["msg"]).removeprefix("Value error, ")


def _line_of(node: yaml.Node | None, location: list[str]) -> int:
    """The line of the deepest YAML node on `location` (pydantic's error path)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            node = match[0] if part == location[-1] else match[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
        else:
            break
        line = node.start_mark.line + 1
    return line


# --- evaluation (pure) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """A metric value and where it came from (logged_model, run or metrics.json)."""

    value: float
    source: str


@dataclass(frozen=True)
class Evidence:
    """Everything the checks look at, gathered by `functions.domain.validation`."""

    metrics: dict[str, Observed]
    metric_problems: dict[str, str]
    """Why a metric source could not be read (say, metrics.json not JSON), by source."""
    has_signature: bool | None
    """None when the MLmodel could not be read."""
    files: frozenset[str]
    run_tags: dict[str, str] | None
    """None when the version has no run the tracking server knows."""
    has_dataset_inputs: bool
    non_finite: tuple[tuple[str, Observed], ...] = ()
    """Every (metric name, value) that is NaN or infinite, from every source (not only the first that has it)."""
    baseline_version: str | None = None
    baseline_metric: Observed | None = None
    is_baseline: bool = False


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str
    observed: float | str | None = None
    threshold: float | str | None = None
    source: str | None = None
    skipped: bool = False


ENVIRONMENT_FILES = ("requirements.txt", "conda.yaml", "python_env.yaml")


def evaluate(policy: Policy, evidence: Evidence) -> list[Check]:
    """Every check the policy asks for, in a stable order. A skipped check passes and says why."""
    checks: list[Check] = []
    for name, rule in sorted(policy.metrics.items()):
        checks.extend(_metric_checks(name, rule, evidence))
    if policy.finite_metrics:
        checks.extend(_finite_checks(policy, evidence))
    if policy.compare is not None and policy.reference is None:  # with a reference: `functions.domain.reference`
        checks.append(compare_check(policy.compare, evidence))
    if policy.artifacts.signature:
        checks.append(_signature_check(evidence))
    if policy.artifacts.environment:
        checks.append(_environment_check(policy.artifacts.environment, evidence))
    checks.extend(_lineage_checks(policy.lineage, evidence))
    for source, problem in sorted(evidence.metric_problems.items()):
        checks.append(Check(f"source:{source}", False, problem, source=source))
    return checks


def _metric_checks(name: str, rule: MetricRule, evidence: Evidence) -> list[Check]:
    observed = evidence.metrics.get(name)
    check = f"metric:{name}"
    if observed is None:
        if rule.required:
            return [Check(check, False, f"metric {name} is missing (required)")]
        return [Check(check, True, f"metric {name} is missing (optional)", skipped=True)]
    value, source = observed.value, observed.source
    if not math.isfinite(value):
        return [Check(check, False, f"metric {name} is {value} (not a finite number)", str(value), None, source)]
    results = []
    if rule.min is not None:
        passed = _at_least(value, rule.min)
        verb = "is at least" if passed else "is below the minimum"
        results.append(Check(f"{check}:min", passed, f"{name} {value:g} {verb} {rule.min:g}", value, rule.min, source))
    if rule.max is not None:
        passed = _at_least(rule.max, value)
        verb = "is at most" if passed else "is above the maximum"
        results.append(Check(f"{check}:max", passed, f"{name} {value:g} {verb} {rule.max:g}", value, rule.max, source))
    return results or [Check(check, True, f"{name} is present ({value:g})", value, None, source)]


def _finite_checks(policy: Policy, evidence: Evidence) -> list[Check]:
    """A failed check per non-finite metric value, unless a listed metric's own check already fails on it."""
    checks = []
    for name, observed in evidence.non_finite:
        if name in policy.metrics and evidence.metrics.get(name) == observed:
            continue
        checks.append(
            Check(
                f"finite:{name}:{observed.source}",
                False,
                f"metric {name} is {observed.value} in the {observed.source} (not a finite number: a diverged run?)",
                str(observed.value),
                None,
                observed.source,
            )
        )
    return checks


def compare_check(rule: CompareRule, evidence: Evidence) -> Check:
    """The comparison with the alias's holder; with `gate: false` a failed one passes as a skip that says so."""
    check = _compare_check(rule, evidence)
    if not rule.gate and not check.passed:
        check = replace(
            check, passed=True, skipped=True, message=f"{check.message} (ranks only: compare.gate is false)"
        )
    return check


def _compare_check(rule: CompareRule, evidence: Evidence) -> Check:
    name = f"compare:{rule.alias}:{rule.metric}"
    if evidence.is_baseline:
        return Check(name, True, f"this version holds {rule.alias}: comparison skipped", skipped=True)
    if evidence.baseline_version is None:
        return Check(name, True, f"no version holds {rule.alias} yet: comparison skipped", skipped=True)
    candidate = evidence.metrics.get(rule.metric)
    baseline = evidence.baseline_metric
    if candidate is None or not math.isfinite(candidate.value):
        return Check(name, False, f"metric {rule.metric} is missing or not finite: cannot compare")
    if baseline is None or not math.isfinite(baseline.value):
        return Check(
            name,
            False,
            f"{rule.alias} (version {evidence.baseline_version}) has no finite {rule.metric}: cannot compare",
            candidate.value,
            source=candidate.source,
        )
    gain = candidate.value - baseline.value if rule.direction == "higher" else baseline.value - candidate.value
    if rule.improvement == "relative":
        gain = gain / abs(baseline.value) if baseline.value else math.copysign(math.inf, gain) if gain else 0.0
    passed = _at_least(gain, rule.min_improvement)
    kind = "relative " if rule.improvement == "relative" else ""
    verdict = "beats" if passed else "does not beat"
    message = (
        f"{rule.metric} {candidate.value:g} {verdict} {rule.alias} v{evidence.baseline_version} "
        f"({baseline.value:g}, {rule.direction} is better) by the {kind}minimum of {rule.min_improvement:g}"
    )
    return Check(name, passed, message, candidate.value, baseline.value, candidate.source)


def _at_least(value: float, threshold: float) -> bool:
    """`value >= threshold`, where "exactly at the threshold" survives floating-point rounding (0.84 - 0.80)."""
    return value >= threshold or math.isclose(value, threshold, rel_tol=1e-9, abs_tol=1e-12)


def _signature_check(evidence: Evidence) -> Check:
    if evidence.has_signature is None:
        return Check("artifact:signature", False, "MLmodel could not be read: signature unknown")
    if evidence.has_signature:
        return Check("artifact:signature", True, "MLmodel has a signature")
    return Check("artifact:signature", False, "MLmodel has no signature")


def _environment_check(required: bool | list[str], evidence: Evidence) -> Check:
    if isinstance(required, list):
        missing = sorted(name for name in required if name not in evidence.files)
        if missing:
            return Check("artifact:environment", False, f"missing {', '.join(missing)}: cannot be rebuilt")
        return Check("artifact:environment", True, f"environment files present: {', '.join(sorted(required))}")
    present = sorted(name for name in ENVIRONMENT_FILES if name in evidence.files)
    if present:
        return Check("artifact:environment", True, f"environment files present: {', '.join(present)}")
    return Check(
        "artifact:environment", False, f"no environment file ({', '.join(ENVIRONMENT_FILES)}): cannot be rebuilt"
    )


def _lineage_checks(rule: LineageRule, evidence: Evidence) -> list[Check]:
    checks = []
    for tag in rule.run_tags:
        name = f"lineage:run_tag:{tag}"
        if evidence.run_tags is None:
            checks.append(Check(name, False, f"no run is known for this version: run tag {tag} cannot be checked"))
        elif evidence.run_tags.get(tag):
            checks.append(Check(name, True, f"run tag {tag} = {evidence.run_tags[tag]}", evidence.run_tags[tag]))
        else:
            checks.append(Check(name, False, f"run tag {tag} is missing"))
    if rule.dataset_inputs:
        passed = evidence.has_dataset_inputs
        message = "the run records its dataset inputs" if passed else "the run records no dataset inputs"
        checks.append(Check("lineage:dataset_inputs", passed, message))
    return checks
