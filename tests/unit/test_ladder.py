"""The promotion ladder: its policy schema (refused with clear errors) and climbing it on the in-memory registry."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from functions.domain.aliases import AliasKeeper
from functions.domain.errors import Rejected, Unavailable
from functions.domain.ladder import Climber, Side, locate
from functions.domain.ladder_policy import rung_credentials
from functions.domain.policy import PolicyError, load_policies, parse_policy
from functions.domain.ports import VersionInfo, copy_source
from functions.domain.tags import (
    IDENTITY_TAG,
    LADDER_APPROVER_TAG,
    LADDER_CORRELATION_TAG,
    LADDER_ENVIRONMENT_TAG,
    LADDER_HISTORY_TAG,
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
    RollbackRequested,
    ValidationRequested,
)
from tests.builders import LADDER, NOW, FakeContext, LadderWorld, policies_folder, sqs_event
from tests.conftest import load_event
from tests.fakes import FakeArtifactStore, FakeQueue, FakeRegistry

# --- the policy -------------------------------------------------------------------------------------

SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mlflow-prod-AbCdEf"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SAGEMAKER = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/prod"


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
        (
            f"    - {{name: dev, model: a}}\n    - {{name: prod, model: b, credentials_secret: '{SECRET}'}}\n",
            "environment prod: credentials_secret is for a rung on another http(s) MLflow server (registry_uri)",
        ),
        (
            f"    - {{name: dev, model: a}}\n    - {{name: prod, model: b, registry_uri: '{SAGEMAKER}', "
            f"credentials_secret: '{SECRET}'}}\n",
            "a SageMaker tracking server is reached with the aliases function's role",
        ),
        (
            f"    - {{name: dev, model: a}}\n    - {{name: prod, model: b, registry_uri: databricks, "
            f"credentials_secret: '{SECRET}'}}\n",
            "credentials_secret is for a rung on another http(s) MLflow server",
        ),
        (
            f"    - {{name: dev, model: a, credentials_secret: '{SECRET}'}}\n    - {{name: prod, model: b}}\n",
            "takes no from, requires, registry_uri, credentials_secret or revalidate",
        ),
        (
            "    - {name: dev, model: a}\n    - {name: prod, model: b, registry_uri: 'https://m.example.com', "
            "credentials_secret: mlflow-prod}\n",
            "must be a Secrets Manager secret's complete ARN (with its 6-character suffix)",
        ),
        (
            "    - {name: dev, model: a}\n    - {name: prod, model: b, registry_uri: 'https://m.example.com', "
            f"credentials_secret: '{SECRET[:-7]}'}}\n",
            "must be a Secrets Manager secret's complete ARN",
        ),
        (
            f"    - {{name: dev, model: a}}\n    - {{name: prod, model: b, registry_uri: 'https://m.example.com', "
            f"credentials_key: '{KEY}'}}\n",
            "environment prod: credentials_key is the key of credentials_secret; set both",
        ),
        (
            f"    - {{name: dev, model: a}}\n    - {{name: prod, model: b, registry_uri: 'https://m.example.com', "
            f"credentials_secret: '{SECRET}', credentials_key: alias/mine}}\n",
            "credentials_key 'alias/mine' must be a KMS key ARN",
        ),
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


def across_servers(model: str, secret: str | None) -> str:
    """`model`'s ladder: dev here, prod on https://mlflow-prod.example.com (with `secret`, if any)."""
    credentials = f", credentials_secret: '{secret}'" if secret else ""
    return (
        "promotion: {aliases: {challenger: always}}\nladder:\n  environments:\n"
        f"    - {{name: dev, model: {model}}}\n"
        f"    - {{name: prod, model: {model}-prod, registry_uri: 'https://mlflow-prod.example.com'{credentials}}}\n"
    )


def test_a_rung_on_another_server_takes_a_secret_of_its_own_and_one_server_has_one(tmp_path):
    # GIVEN churn's prod on another MLflow server with a secret (and its key), and fraud's prod on the same server
    for name in ("same", "both", "none"):
        (tmp_path / name).mkdir()
    churn = across_servers("churn", SECRET).replace(f"'{SECRET}'", f"'{SECRET}', credentials_key: '{KEY}'")
    folder = policies_folder(tmp_path / "same", default="{}\n", churn=churn, fraud=across_servers("fraud", None))
    # WHEN fraud names no secret for it THEN the folder is refused: one server, one set of credentials
    with pytest.raises(PolicyError, match=r"fraud.yaml:1: ladder: environment prod reaches https://mlflow-prod"):
        load_policies(folder)
    # WHEN both name the same secret and key THEN it loads, and the server's credentials are that secret and key
    fraud = across_servers("fraud", SECRET).replace(f"'{SECRET}'", f"'{SECRET}', credentials_key: '{KEY}'")
    loaded = load_policies(policies_folder(tmp_path / "both", default="{}\n", churn=churn, fraud=fraud))
    assert rung_credentials(loaded.ladders) == {"https://mlflow-prod.example.com": (SECRET, KEY)}
    # AND a ladder without secrets names no credentials
    plain = load_policies(policies_folder(tmp_path / "none", default="{}\n", churn=across_servers("churn", None)))
    assert rung_credentials(plain.ladders) == {}


# --- climbing ---------------------------------------------------------------------------------------


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


# --- a rung in another registry, time as challenger, the source's history, the workspace -----------------

PROD_URI = "https://mlflow-prod.example.com"
ACROSS = LADDER.replace("      model: churn-prod\n", f"      model: churn-prod\n      registry_uri: {PROD_URI}\n")


class TwoRegistries(LadderWorld):
    """The ladder's dev and staging in the functions' registry, prod in another (a second fake)."""

    def __init__(self, tmp_path: Path, policy: str = ACROSS) -> None:
        super().__init__(tmp_path, policy)
        self.prod = FakeRegistry()
        reader = EvidenceReader(bucket="b", registry=self.prod, artifacts=FakeArtifactStore())
        self.prod_keeper = AliasKeeper(
            self.policies, registry=self.prod, reader=reader, events=self.events, now=self.clock
        )
        self.climber = Climber(
            self.policies,
            registry=self.registry,
            keeper=self.keeper,
            events=self.events,
            now=self.clock,
            sides=self.side,
        )

    def side(self, uri: str) -> Side:
        if uri != PROD_URI:
            raise Unavailable("registry_unavailable", f"cannot reach {uri}")
        return Side(self.prod, self.prod_keeper)

    def to_prod(self, version: str = "1") -> object:
        self.now += timedelta(hours=25)
        return self.promote("prod", version=version, approver="alice")


def test_a_version_climbs_into_another_registry_registered_from_its_files_exactly_once(tmp_path):
    # GIVEN a dev version promoted to staging (same registry), a day later
    world = TwoRegistries(tmp_path)
    world.upload()
    world.promote("staging")
    # WHEN alice promotes it to prod, which is in another registry
    climb = world.to_prod()
    # THEN prod's registry has one version, registered from the upload's files (not a models:/ URI of the other
    # registry), without the other registry's run, with the source's identity and staging's lineage
    assert (climb.action, climb.model, climb.aliases) == ("promoted", "churn-prod", ("champion",))
    assert PROD_URI in climb.reason
    [prod] = [v for v in world.prod.versions if v.model_name == "churn-prod"]
    assert (prod.source, prod.run_id, prod.model_id) == ("s3://b/models/churn/1", None, None)
    assert prod.tags[IDENTITY_TAG] == "s3://b/models/churn/1/MLmodel"
    assert (prod.tags[LADDER_ENVIRONMENT_TAG], prod.tags[LADDER_SOURCE_ENVIRONMENT_TAG]) == ("prod", "staging")
    assert (prod.tags[LADDER_SOURCE_MODEL_TAG], prod.tags[LADDER_SOURCE_VERSION_TAG]) == ("churn-staging", "1")
    assert prod.tags[TAG_STATUS] == "passed"
    assert world.prod.aliases[("churn-prod", "champion")] == "1"
    assert world.prod.copy_calls == []
    assert world.registry.copy_calls == [("churn", "1", "churn-staging")]
    assert not [v for v in world.registry.versions if v.model_name == "churn-prod"]
    [promoted] = [
        e for e in world.events.published if isinstance(e, ModelVersionPromoted) and e.to_environment == "prod"
    ]
    assert (promoted.source_model, promoted.from_environment) == ("churn-staging", "staging")
    # WHEN the same request comes again THEN nothing is registered, tagged or announced again
    published = len(world.events.published)
    assert world.promote("prod", approver="alice").action == "kept"
    assert len(world.prod.create_calls) == 1
    assert len(world.events.published) == published


def test_a_copy_into_another_registry_made_half_way_is_completed_not_registered_again(tmp_path):
    # GIVEN a staging version, and a prod version in the other registry created from its files but never tagged
    world = TwoRegistries(tmp_path)
    world.upload()
    world.promote("staging")
    [staging] = world.versions("churn-staging")
    world.prod.create_version("churn-prod", "s3://b/models/churn/1", run_id=None, model_id=None, tags=staging.tags)
    # WHEN the promotion is retried
    climb = world.to_prod()
    # THEN that version gets its lineage and champion; no second one is made
    assert (climb.action, climb.version) == ("promoted", "1")
    assert len(world.prod.create_calls) == 1
    assert world.prod.versions[0].tags[LADDER_ENVIRONMENT_TAG] == "prod"
    assert world.prod.aliases[("churn-prod", "champion")] == "1"


def test_a_rollback_in_the_other_registry_leaves_staging_alone(tmp_path):
    # GIVEN two versions that climbed to prod in the other registry
    world = TwoRegistries(tmp_path)
    for number in ("1", "2"):
        world.upload(number)
        world.promote("staging", version=number)
        world.to_prod(number)
    assert world.prod.aliases[("churn-prod", "champion")] == "2"
    # WHEN prod's champion is rolled back there
    decision = world.prod_keeper.rollback(
        RollbackRequested(model_name="churn-prod", alias="champion", requested_by="oncall", correlation_id="rb")
    )
    # THEN prod's champion is v1 again and staging's challenger still v2
    assert (decision.action, world.prod.aliases[("churn-prod", "champion")]) == ("moved", "1")
    assert world.registry.aliases[("churn-staging", "challenger")] == "2"


def test_a_rung_in_a_registry_the_function_cannot_reach_is_refused_with_its_reason(tmp_path):
    # GIVEN a staging version, and a ladder whose prod is in a registry this function has no way to
    world = TwoRegistries(tmp_path, ACROSS.replace(PROD_URI, "https://elsewhere.example.com"))
    world.upload()
    world.promote("staging")
    # WHEN it is promoted to prod THEN the registry's failure is the reason (retried: Unavailable)
    with pytest.raises(Unavailable) as unreachable:
        world.to_prod()
    assert "cannot reach https://elsewhere.example.com" in unreachable.value.message
    # AND a climber given no other registries refuses the rung outright
    (tmp_path / "alone").mkdir()
    alone = LadderWorld(tmp_path / "alone", ACROSS)
    alone.upload()
    alone.promote("staging")
    alone.now += timedelta(hours=25)
    with pytest.raises(Rejected) as refused:
        alone.promote("prod", approver="alice")
    assert refused.value.reason == "other_registry_unsupported"
    assert not world.prod.versions


def test_a_rung_in_another_registry_cannot_re_run_the_gate():
    # GIVEN a rung in another registry that asks for the gate again WHEN parsed THEN it is refused with why
    message = ladder_error(
        f"    - {{name: dev, model: a}}\n    - {{name: prod, model: b, registry_uri: {PROD_URI}, revalidate: true}}\n"
    )
    assert "is in another registry" in message
    assert "set revalidate: false" in message


def test_the_source_records_where_its_version_was_promoted_once(tmp_path):
    # GIVEN a version promoted to staging, then (in the other registry) to prod, each twice
    world = TwoRegistries(tmp_path)
    world.upload()
    world.promote("staging")
    world.promote("staging")
    world.to_prod()
    world.promote("prod", approver="alice")
    # THEN the source models' ladder history says so, once per rung, with who, when and the correlation id
    [dev] = json.loads(world.registry.model_tags["churn"][LADDER_HISTORY_TAG])
    assert (dev["version"], dev["reason"], dev["actor"], dev["correlation_id"]) == (
        "1",
        "promoted to staging: churn-staging v1",
        "ci",
        "c1",
    )
    assert dev["at"] == NOW.isoformat(timespec="seconds")
    [staging] = json.loads(world.registry.model_tags["churn-staging"][LADDER_HISTORY_TAG])
    assert (staging["reason"], staging["actor"], staging["correlation_id"]) == (
        f"promoted to prod: churn-prod v1 in {PROD_URI}",
        "alice",
        "c3",
    )


CHALLENGER_HOURS = LADDER.replace("requires: {approval: true, min_hours: 24}", "requires: {min_challenger_hours: 12}")


def test_prod_needs_hours_as_challenger_at_staging(tmp_path):
    # GIVEN a version that took challenger at staging at NOW
    world = LadderWorld(tmp_path, CHALLENGER_HOURS)
    world.upload()
    world.promote("staging")
    # WHEN it asks for prod 6 hours later THEN it is refused with the hours it has
    world.now = NOW + timedelta(hours=6)
    with pytest.raises(Rejected) as raised:
        world.promote("prod")
    assert raised.value.reason == "too_early"
    assert "needs 12h as challenger at staging; churn-staging v1 has held it 6.0h" in raised.value.message
    # WHEN it asks 13 hours later THEN it enters prod
    world.now = NOW + timedelta(hours=13)
    assert world.promote("prod").action == "promoted"


def test_a_challenger_rolled_back_at_staging_may_not_enter_prod(tmp_path):
    # GIVEN v1 then v2 challenger at staging, and challenger rolled back from v2 to v1 there
    world = LadderWorld(tmp_path, CHALLENGER_HOURS)
    for number in ("1", "2"):
        world.upload(number)
        world.promote("staging", version=number)
    world.now = NOW + timedelta(hours=1)
    world.keeper.rollback(
        RollbackRequested(model_name="churn-staging", alias="challenger", requested_by="oncall", correlation_id="rb")
    )
    world.now = NOW + timedelta(hours=48)
    # WHEN v2 asks for prod THEN it is refused for the rollback, however long ago it took challenger
    with pytest.raises(Rejected) as raised:
        world.promote("prod", version="2")
    assert raised.value.reason == "rolled_back"
    assert "challenger was rolled back from churn-staging v2 to v1" in raised.value.message
    # AND v1, challenger again since the rollback 47 hours ago, enters prod
    assert world.promote("prod", version="1").action == "promoted"


def test_a_version_that_never_held_challenger_below_waits(tmp_path):
    # GIVEN a staging rung whose alias is not challenger WHEN its version asks for prod THEN it is refused
    world = LadderWorld(
        tmp_path,
        CHALLENGER_HOURS.replace(
            "model: churn-staging, aliases: [challenger]", "model: churn-staging, aliases: [candidate]"
        ),
    )
    world.upload()
    world.promote("staging")
    world.now = NOW + timedelta(hours=48)
    with pytest.raises(Rejected) as raised:
        world.promote("prod")
    assert "never held it there" in raised.value.message


def test_the_ladder_acts_in_the_requests_workspace_in_every_registry(tmp_path):
    # GIVEN a dev version at staging, and prod in the other registry
    world = TwoRegistries(tmp_path)
    world.upload()
    world.promote("staging")
    world.registry.calls_by_workspace.clear()
    world.now += timedelta(hours=25)
    # WHEN prod is requested in workspace team-a
    world.climber.promote(
        EnvironmentPromotionRequested(
            model_name="churn",
            version="1",
            environment="prod",
            requested_by="ci",
            approver="alice",
            correlation_id="w1",
            workspace="team-a",
        )
    )
    # THEN every call in both registries is made in team-a, and the events say so
    assert set(world.registry.calls_by_workspace) == {"team-a"}
    assert world.prod.calls_by_workspace
    assert set(world.prod.calls_by_workspace) == {"team-a"}
    announced = [e for e in world.events.published if getattr(e, "correlation_id", None) == "w1"]
    assert {type(e) for e in announced} == {ModelVersionPromoted, ModelAliasMoved}
    assert {e.workspace for e in announced} == {"team-a"}


@pytest.mark.parametrize("uri", ["ftp://mlflow.example.com", "mlflow-prod", "arn:aws:s3:::bucket"])
def test_a_registry_uri_mlflow_cannot_reach_is_refused_as_unknown(uri):
    from functions.adapters.registry_factory import other_registry

    # GIVEN a rung's registry_uri that names no registry WHEN the function asks for it THEN it is refused
    with pytest.raises(Rejected) as raised:
        other_registry(uri)
    assert raised.value.reason == "unknown_registry"
    assert repr(uri) in raised.value.message
