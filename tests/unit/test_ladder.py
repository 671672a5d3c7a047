"""The promotion ladder: its policy schema (refused with clear errors) and climbing it on the in-memory registry."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from functions.domain.aliases import AliasKeeper
from functions.domain.errors import Rejected
from functions.domain.ladder import Climber, locate
from functions.domain.policy import PolicyError, load_policies, parse_policy
from functions.domain.ports import VersionInfo, copy_source
from functions.domain.tags import (
    IDENTITY_TAG,
    LADDER_APPROVER_TAG,
    LADDER_CORRELATION_TAG,
    LADDER_ENVIRONMENT_TAG,
    LADDER_PROMOTED_AT_TAG,
    LADDER_SOURCE_ENVIRONMENT_TAG,
    LADDER_SOURCE_MODEL_TAG,
    LADDER_SOURCE_VERDICT_TAG,
    LADDER_SOURCE_VERSION_TAG,
    TAG_STATUS,
    TAG_VERDICT,
    history_tag,
    pending_tag,
)
from functions.domain.validation import EvidenceReader
from functions.handlers import aliases
from functions.models.events import (
    EnvironmentPromotionRequested,
    ModelAliasMoved,
    ModelVersionPromoted,
    ModelVersionValidated,
    ValidationRequested,
)
from tests.builders import NOW, FakeContext, policies_folder, sqs_event
from tests.conftest import load_event
from tests.fakes import FakeArtifactStore, FakeEventPublisher, FakeQueue, FakeRegistry

LADDER = """\
promotion:
  aliases: {challenger: always}
ladder:
  environments:
    - {name: dev, model: churn, aliases: [challenger]}
    - {name: staging, model: churn-staging, aliases: [challenger]}
    - name: prod
      model: churn-prod
      aliases: [champion]
      requires: {approval: true, min_hours: 24}
"""


# --- the policy -------------------------------------------------------------------------------------


def ladder_error(environments: str) -> str:
    with pytest.raises(PolicyError) as raised:
        parse_policy(f"ladder:\n  environments:\n{environments}", source="churn.yaml")
    return str(raised.value)


def test_a_ladder_parses_in_order_with_its_defaults():
    # GIVEN the three-rung ladder WHEN it is parsed
    ladder = parse_policy(LADDER).ladder
    # THEN its environments keep their order, targets, aliases, requirements and defaults
    assert ladder is not None
    assert [(r.name, r.model, r.aliases) for r in ladder.environments] == [
        ("dev", "churn", ["challenger"]),
        ("staging", "churn-staging", ["challenger"]),
        ("prod", "churn-prod", ["champion"]),
    ]
    prod = ladder.rung("prod")
    assert prod is not None
    assert prod.requires.approval
    assert prod.requires.min_hours == 24
    assert not prod.revalidate
    assert prod.registry_uri is None
    assert ladder.below(prod) == ladder.rung("staging")
    assert parse_policy("{}").ladder is None


@pytest.mark.parametrize(
    ("environments", "message"),
    [
        (
            "    - {name: dev, model: a}\n    - {name: dev, model: b}\n",
            "churn.yaml:1: ladder: environment dev is listed twice",
        ),
        (
            "    - {name: dev, model: a}\n    - {name: prod}\n",
            "churn.yaml:1: ladder: environment prod has no target: set its model",
        ),
        (
            "    - {name: dev, model: a}\n    - {name: prod, model: b, from: qa}\n",
            "ladder: environment prod: from qa is no environment of this ladder (dev, prod)",
        ),
        (
            "    - {name: dev, model: a}\n    - {name: staging, model: b, from: prod}\n    - {name: prod, model: c}\n",
            "ladder: environment staging: from prod is not below it: a ladder cannot loop (a cycle)",
        ),
        (
            "    - {name: dev, model: a}\n    - {name: prod, model: b, from: prod}\n",
            "ladder: environment prod: from prod is not below it",
        ),
        (
            "    - {name: dev, model: a}\n    - {name: staging, model: b}\n    - {name: prod, model: a}\n",
            "ladder: environments dev and prod both target a: a version would climb back into a model it left (a cycle)",
        ),
        (
            "    - {name: dev, model: a, requires: {approval: true}}\n    - {name: prod, model: b}\n",
            "ladder: environment dev is the first",
        ),
        ("    - {name: dev, model: a}\n", "ladder.environments: List should have at least 2 items"),
        ("    - {name: Dev!, model: a}\n    - {name: prod, model: b}\n", "must be lower-case letters"),
        ("    - {name: dev, model: a}\n    - {name: prod, model: b, aliases: [latest]}\n", "reserved by MLflow"),
        ("    - {name: dev, model: a}\n    - {name: prod, model: b, requires: {min_hours: -1}}\n", "min_hours"),
        ("    - {name: dev, model: a}\n    - {name: prod, model: b, gate: x}\n", "unknown key"),
    ],
)
def test_a_broken_ladder_is_refused_with_its_reason(environments, message):
    # GIVEN a ladder with one problem WHEN it is parsed THEN the error names the file and the problem
    assert message in ladder_error(environments)


@pytest.mark.parametrize(
    ("policies", "message"),
    [
        ({"default": LADDER}, "default.yaml:1: ladder: a ladder names its models"),
        ({"other": LADDER}, "other.yaml:1: ladder: the first environment (dev) targets churn, but this policy is for"),
        (
            {
                "churn": LADDER.replace(
                    "aliases: [challenger]}\n    - {name: staging", "aliases: [champion]}\n    - {name: staging"
                )
            },
            "churn.yaml:1: ladder: environment dev lists champion, which promotion.aliases does not move",
        ),
        (
            {"churn": LADDER, "fraud": LADDER.replace("model: churn,", "model: fraud,")},
            "fraud.yaml:1: ladder: environment staging targets churn-staging, already on the ladder of churn",
        ),
    ],
)
def test_ladders_are_checked_against_their_policies_at_load(tmp_path, policies, message):
    # GIVEN a policies folder whose ladders clash with their policies WHEN it is loaded THEN it is refused
    folder = policies_folder(tmp_path, **{"default": "{}\n", **policies})
    with pytest.raises(PolicyError) as raised:
        load_policies(folder)
    assert message in str(raised.value)


# --- climbing ---------------------------------------------------------------------------------------


class LadderWorld:
    def __init__(self, tmp_path: Path, policy: str = LADDER) -> None:
        self.policies = load_policies(policies_folder(tmp_path, default="{}\n", churn=policy))
        self.registry = FakeRegistry()
        self.events = FakeEventPublisher()
        self.now = NOW
        reader = EvidenceReader(bucket="b", registry=self.registry, artifacts=FakeArtifactStore())
        self.keeper = keeper = AliasKeeper(
            self.policies, registry=self.registry, reader=reader, events=self.events, now=self.clock
        )
        self.climber = Climber(self.policies, registry=self.registry, keeper=keeper, events=self.events, now=self.clock)
        self.requests = 0

    def clock(self):  # type: ignore[no-untyped-def]
        return self.now

    def upload(self, number: str = "1", status: str = "passed") -> VersionInfo:
        """A version of the dev model as the register and validate routes leave it (passed at NOW)."""
        tags = {
            IDENTITY_TAG: f"s3://b/models/churn/{number}/MLmodel",
            TAG_VERDICT: json.dumps({"validated_at": NOW.isoformat(timespec="seconds"), "reasons": "r"}),
            TAG_STATUS: status,
            pending_tag("champion"): f"{number}@x",
        }
        version = VersionInfo("churn", number, f"s3://b/models/churn/{number}", "run1", tags)
        self.registry.versions.append(version)
        return version

    def promote(self, to: str, model: str = "churn", version: str = "1", approver: str | None = None):  # type: ignore[no-untyped-def]
        self.requests += 1
        return self.climber.promote(
            EnvironmentPromotionRequested(
                model_name=model,
                version=version,
                environment=to,
                requested_by="ci",
                approver=approver,
                correlation_id=f"c{self.requests}",
            )
        )

    def versions(self, model: str) -> list[VersionInfo]:
        return [v for v in self.registry.versions if v.model_name == model]


def test_a_version_climbs_dev_staging_prod_with_its_lineage_and_aliases(tmp_path):
    # GIVEN a dev version that passed
    world = LadderWorld(tmp_path)
    world.upload()
    # WHEN it is promoted to staging
    climb = world.promote("staging")
    # THEN it is copied once into churn-staging with the source's tags, its lineage, and challenger there
    assert (climb.action, climb.model, climb.version, climb.aliases) == (
        "promoted",
        "churn-staging",
        "1",
        ("challenger",),
    )
    [staging] = world.versions("churn-staging")
    assert staging.source == copy_source("churn", "1")
    assert staging.run_id == "run1"
    assert staging.tags[TAG_STATUS] == "passed"  # the carried verdict it was promoted on
    assert pending_tag("champion") not in staging.tags  # the source's approval marks do not travel
    assert {k: staging.tags[k] for k in staging.tags if k.startswith("ladder.")} == {
        LADDER_SOURCE_ENVIRONMENT_TAG: "dev",
        LADDER_SOURCE_MODEL_TAG: "churn",
        LADDER_SOURCE_VERSION_TAG: "1",
        LADDER_SOURCE_VERDICT_TAG: f"passed@{NOW.isoformat(timespec='seconds')}",
        LADDER_CORRELATION_TAG: "c1",
        LADDER_APPROVER_TAG: "ci",
        LADDER_PROMOTED_AT_TAG: NOW.isoformat(timespec="seconds"),
        LADDER_ENVIRONMENT_TAG: "staging",
    }
    assert world.registry.aliases[("churn-staging", "challenger")] == "1"
    assert json.loads(world.registry.model_tags["churn-staging"][history_tag("challenger")])[-1]["actor"] == "ci"
    [promoted] = [e for e in world.events.published if isinstance(e, ModelVersionPromoted)]
    assert (promoted.from_environment, promoted.to_environment, promoted.model_name) == (
        "dev",
        "staging",
        "churn-staging",
    )
    # WHEN a day later alice approves it for prod, naming the dev version
    world.now = NOW + timedelta(hours=24)
    climb = world.promote("prod", approver="alice")
    # THEN the staging copy is copied to prod and champion moves there; staging and dev are untouched
    assert (climb.action, climb.model, climb.aliases) == ("promoted", "churn-prod", ("champion",))
    [prod] = world.versions("churn-prod")
    assert (prod.source, prod.tags[LADDER_SOURCE_MODEL_TAG], prod.tags[LADDER_SOURCE_ENVIRONMENT_TAG]) == (
        copy_source("churn-staging", "1"),
        "churn-staging",
        "staging",
    )
    assert prod.tags[LADDER_ENVIRONMENT_TAG] == "prod"
    assert prod.tags[LADDER_APPROVER_TAG] == "alice"
    assert world.registry.aliases[("churn-prod", "champion")] == "1"
    assert world.registry.aliases[("churn-staging", "challenger")] == "1"
    assert world.registry.copy_calls == [("churn", "1", "churn-staging"), ("churn-staging", "1", "churn-prod")]


def test_promoting_twice_copies_once_and_moves_nothing_again(tmp_path):
    # GIVEN a version promoted to staging
    world = LadderWorld(tmp_path)
    world.upload()
    world.promote("staging")
    published = len(world.events.published)
    # WHEN the same request comes again (a retry, a replayed event, a second operator)
    climb = world.promote("staging")
    # THEN nothing is copied, tagged or announced again
    assert climb.action == "kept"
    assert climb.version == "1"
    assert len(world.versions("churn-staging")) == 1
    assert len(world.registry.copy_calls) == 1
    assert len(world.events.published) == published


def test_a_copy_made_without_its_lineage_is_completed_not_duplicated(tmp_path):
    # GIVEN a copy that failed half-way: the version exists in staging, with its source's tags but no lineage
    world = LadderWorld(tmp_path)
    world.upload()
    world.registry.copy_version("churn", "1", "churn-staging")
    # WHEN the request is retried
    climb = world.promote("staging")
    # THEN that version gets its lineage and the aliases; no second copy is made
    assert (climb.action, climb.version) == ("promoted", "1")
    [staging] = world.versions("churn-staging")
    assert staging.tags[LADDER_ENVIRONMENT_TAG] == "staging"
    assert len(world.registry.copy_calls) == 1
    assert world.registry.aliases[("churn-staging", "challenger")] == "1"


def test_a_half_way_copy_that_carries_its_sources_lineage_is_completed_with_its_own(tmp_path):
    # GIVEN a version at staging, and a prod copy of it that stopped before its tags: it carries staging's lineage
    world = LadderWorld(tmp_path)
    world.upload()
    world.promote("staging")
    world.registry.copy_version("churn-staging", "1", "churn-prod")
    assert world.versions("churn-prod")[0].tags[LADDER_ENVIRONMENT_TAG] == "staging"
    # WHEN prod is requested in time, with an approver
    world.now = NOW + timedelta(hours=25)
    world.promote("prod", approver="alice")
    # THEN the half-way copy is completed as prod's, not copied again
    [prod] = world.versions("churn-prod")
    assert (prod.tags[LADDER_ENVIRONMENT_TAG], prod.tags[LADDER_SOURCE_MODEL_TAG]) == ("prod", "churn-staging")
    assert len(world.registry.copy_calls) == 2


def test_a_registry_that_rewrites_sources_finds_the_copy_by_the_uploads_identity(tmp_path):
    # GIVEN a Unity Catalog-like registry (a copy's source is rewritten to its own storage)
    world = LadderWorld(tmp_path)
    world.registry.unity_catalog = True
    world.upload()
    world.promote("staging")
    # WHEN the request comes again THEN the copy is found by the identity tag it carries; no second copy
    assert world.promote("staging").action == "kept"
    assert len(world.versions("churn-staging")) == 1


@pytest.mark.parametrize(
    ("setup", "request_args", "reason", "message"),
    [
        ("none", ("qa",), "unknown_environment", "'qa' is no environment of churn's ladder (dev, staging, prod)"),
        ("none", ("staging", "fraud"), "not_on_a_ladder", "fraud is on no promotion ladder"),
        ("none", ("staging", "churn", "9"), "unknown_version", "no such version"),
        ("failed", ("staging",), "not_passed", "its validation status is failed, not passed at dev"),
        ("unvalidated", ("staging",), "not_passed", "missing (not validated), not passed at dev"),
        ("none", ("prod",), "not_at_rung_below", "churn v1 has not reached staging: promote it there first"),
        ("staged", ("prod",), "approval_required", "entering prod needs an approver"),
        ("staged", ("prod", "churn", "1", "alice"), "too_early", "needs 24h at staging; churn-staging v1 has stood"),
        ("staged", ("dev", "churn-staging", "1"), "not_above", "churn-staging is the staging environment"),
        ("staged", ("staging", "churn-staging", "1"), "not_above", "staging is not a rung above it"),
    ],
)
def test_a_promotion_it_does_not_qualify_for_is_refused_and_leaves_nothing(
    tmp_path, setup, request_args, reason, message
):
    # GIVEN a dev version (passed, failed or unvalidated), perhaps already at staging
    world = LadderWorld(tmp_path)
    world.upload(status={"failed": "failed", "unvalidated": ""}.get(setup, "passed"))
    if setup == "unvalidated":
        world.registry.versions[0] = VersionInfo("churn", "1", "s", "run1", {IDENTITY_TAG: "i"})
    if setup == "staged":
        world.promote("staging")
    before = (list(world.registry.versions), dict(world.registry.aliases), len(world.events.published))
    # WHEN a promotion it does not qualify for is requested
    with pytest.raises(Rejected) as raised:
        world.promote(*request_args)
    # THEN it is refused with its reason, and the registry and the bus are as they were
    assert raised.value.reason == reason
    assert message in raised.value.message
    assert (list(world.registry.versions), dict(world.registry.aliases), len(world.events.published)) == before


def test_a_rung_that_revalidates_clears_the_carried_verdict_and_moves_aliases_only_after_its_own(tmp_path):
    # GIVEN staging re-runs the gate
    world = LadderWorld(
        tmp_path,
        LADDER.replace(
            "aliases: [challenger]}\n    - name: prod", "aliases: [challenger], revalidate: true}\n    - name: prod"
        ),
    )
    world.upload()
    # WHEN the version is promoted there
    climb = world.promote("staging")
    # THEN it is copied without the carried verdict, the gate is asked for, and no alias moves yet
    assert climb.action == "validating"
    [staging] = world.versions("churn-staging")
    assert TAG_STATUS not in staging.tags
    assert TAG_VERDICT not in staging.tags
    assert staging.tags[LADDER_ENVIRONMENT_TAG] == "staging"
    [asked] = [e for e in world.events.published if isinstance(e, ValidationRequested)]
    assert (asked.model_name, asked.version) == ("churn-staging", "1")
    assert ("churn-staging", "challenger") not in world.registry.aliases
    # WHEN asked again before the verdict THEN it still waits
    assert world.promote("staging").action == "validating"
    # WHEN the re-check failed THEN the promotion stops there with its reasons
    world.registry.set_version_tags(
        "churn-staging", "1", {TAG_VERDICT: '{"reasons": "accuracy 0.5 is below 0.9"}', TAG_STATUS: "failed"}
    )
    with pytest.raises(Rejected) as raised:
        world.promote("staging")
    assert raised.value.reason == "failed_at_target"
    assert "accuracy 0.5 is below 0.9" in raised.value.message
    # WHEN it passed THEN the next request moves the rung's aliases, without another copy
    world.registry.set_version_tags("churn-staging", "1", {TAG_STATUS: "passed"})
    climb = world.promote("staging")
    assert climb.aliases == ("challenger",)
    assert len(world.registry.copy_calls) == 1
    assert [e.alias for e in world.events.published if isinstance(e, ModelAliasMoved)] == ["challenger"]


def test_a_replayed_request_copies_nothing(tmp_path):
    # GIVEN a dev version WHEN a replayed request for staging arrives THEN it is a dry run: nothing is copied
    world = LadderWorld(tmp_path)
    world.upload()
    request = EnvironmentPromotionRequested(
        model_name="churn", version="1", environment="staging", requested_by="x", correlation_id="c", replay_name="r"
    )
    assert world.climber.promote(request).action == "dry_run"
    assert world.versions("churn-staging") == []
    assert world.registry.copy_calls == []


def test_every_rung_model_is_located_on_its_ladder(tmp_path):
    # GIVEN the ladder WHEN each model is located THEN it is on churn's ladder at its rung; others are on none
    world = LadderWorld(tmp_path)
    assert [locate(world.policies, m).rung.name for m in ("churn", "churn-staging", "churn-prod")] == [
        "dev",
        "staging",
        "prod",
    ]
    assert locate(world.policies, "fraud") is None


def test_a_passed_re_check_moves_the_rungs_aliases_and_a_failed_one_moves_nothing(tmp_path):
    # GIVEN staging re-runs the gate, and a version copied there awaiting its verdict
    policy = LADDER.replace(
        "aliases: [challenger]}\n    - name: prod", "aliases: [challenger], revalidate: true}\n    - name: prod"
    )
    world = LadderWorld(tmp_path, policy)
    world.upload()
    world.promote("staging")

    def verdict(status: str) -> ModelVersionValidated:
        world.registry.set_version_tags("churn-staging", "1", {TAG_STATUS: status})
        return ModelVersionValidated(
            model_name="churn-staging", version="1", source_uri="s", correlation_id="v", status=status
        )

    # WHEN its re-check fails THEN no alias moves
    assert world.climber.on_verdict(verdict("failed")) is None
    assert ("churn-staging", "challenger") not in world.registry.aliases
    # WHEN it passes THEN the rung's aliases move, by the one who asked for the promotion
    climb = world.climber.on_verdict(verdict("passed"))
    assert climb is not None
    assert (climb.action, climb.aliases) == ("promoted", ("challenger",))
    assert json.loads(world.registry.model_tags["churn-staging"][history_tag("challenger")])[-1]["actor"] == "ci"
    # AND a verdict of the dev model itself is no ladder business
    dev = ModelVersionValidated(model_name="churn", version="1", source_uri="s", correlation_id="v", status="passed")
    assert world.climber.on_verdict(dev) is None


def test_the_gate_reads_a_copys_files_where_its_source_version_has_them(tmp_path):
    # GIVEN a dev version with its files in the bucket, and its copy two rungs up (sourced models:/<name>/<version>)
    registry = FakeRegistry()
    artifacts = FakeArtifactStore()
    artifacts.put("b", "models/churn/1/MLmodel")
    registry.versions.append(VersionInfo("churn", "1", "s3://b/models/churn/1", None, {}))
    registry.copy_version("churn", "1", "churn-staging")
    prod = registry.copy_version("churn-staging", "1", "churn-prod")
    reader = EvidenceReader(bucket="b", registry=registry, artifacts=artifacts)
    # WHEN the gate looks for the copy's model directory THEN it is the original upload's
    found = reader.model_dir(prod, None)
    assert found is not None
    assert (found.bucket, found.prefix) == ("b", "models/churn/1/")
    # AND a copy whose source version is gone has none (the gate then fails on missing files, with its reasons)
    registry.versions = [v for v in registry.versions if v.model_name != "churn"]
    assert reader.model_dir(prod, None) is None


def _request_body(**detail: str) -> str:
    event = {**load_event("model_version_registered.json"), "detail-type": "Environment Promotion Requested"}
    event["detail"] = {"requested_by": "ci", "correlation_id": "c-h", **detail}
    return json.dumps(event)


def test_the_aliases_function_climbs_on_a_request_and_dead_letters_a_refused_one(tmp_path):
    # GIVEN the aliases function wired to the ladder, and a dev version that passed and one that failed
    world = LadderWorld(tmp_path)
    world.upload("1")
    world.upload("2", status="failed")
    queue = FakeQueue()
    deps = aliases.Dependencies(keeper=world.keeper, queue=queue, climber=world.climber)
    # WHEN a request for each arrives in one batch
    bodies = [
        _request_body(model_name="churn", version="1", environment="staging"),
        _request_body(model_name="churn", version="2", environment="staging"),
    ]
    aliases.lambda_handler(sqs_event(*bodies), FakeContext(), dependencies=deps)
    # THEN the passed one is copied and the failed one dead-lettered with its reason
    assert [v.tags[LADDER_SOURCE_VERSION_TAG] for v in world.versions("churn-staging")] == ["1"]
    [dead] = queue.dead_letters
    assert '"version": "2"' in dead["body"] or '"version":"2"' in dead["body"]
    assert dead["attributes"]["reason"] == "not_passed"
