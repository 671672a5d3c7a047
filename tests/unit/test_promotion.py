"""Promotion rules, table-driven: out-of-order arrival, equal metrics, approval, rollback, history."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from functions.domain.errors import Rejected
from functions.domain.promotion import (
    HistoryEntry,
    Standing,
    append_history,
    outranks,
    parse_history,
    rollback_target,
)
from functions.domain.tags import history_tag, pending_tag
from functions.models.events import (
    PromotionPending,
    PromotionRequested,
    RollbackRequested,
)
from tests.builders import ALIAS_POLICY as POLICY
from tests.builders import AliasWorld as World


@pytest.mark.parametrize(
    ("candidate", "holder", "kwargs", "expected"),
    [
        (Standing("2", 0.9), None, {}, True),  # no holder yet
        (Standing("2", 0.91), Standing("1", 0.90), {}, True),
        (Standing("2", 0.89), Standing("1", 0.90), {}, False),
        (Standing("1", 0.91), Standing("2", 0.90), {}, True),  # out of order but better
        (Standing("1", 0.89), Standing("2", 0.90), {}, False),  # out of order and worse
        (Standing("3", 0.90), Standing("2", 0.90), {}, True),  # equal: the higher version wins
        (Standing("2", 0.90), Standing("3", 0.90), {}, False),  # equal, arriving late
        (Standing("2", 0.90), Standing("2", 0.90), {}, False),  # never from itself
        (Standing("2", 1.9), Standing("1", 2.0), {"direction": "lower"}, True),
        (Standing("2", 2.1), Standing("1", 2.0), {"direction": "lower"}, False),
        (Standing("2", 0.905), Standing("1", 0.90), {"min_improvement": 0.01}, False),
        (Standing("2", 0.91), Standing("1", 0.90), {"min_improvement": 0.01}, True),  # exactly at the minimum
        (Standing("3", 0.90), Standing("2", 0.90), {"min_improvement": 0.01}, False),  # equal is no improvement
        (Standing("2", 0.84), Standing("1", 0.80), {"min_improvement": 0.05, "relative": True}, True),
        (Standing("2", None), Standing("1", 0.9), {}, False),  # unknown never displaces known
        (Standing("2", 0.5), Standing("1", None), {}, True),
        (Standing("2", math.nan), Standing("1", 0.9), {}, False),
        (Standing("3", None), Standing("2", None), {}, True),  # no metric: the higher version wins
        (Standing("2", None), Standing("3", None), {}, False),
    ],
)
def test_outranks(candidate, holder, kwargs, expected):
    assert outranks(candidate, holder, **kwargs) is expected


@pytest.mark.parametrize("order", list(itertools.permutations([("1", 0.90), ("2", 0.95), ("3", 0.93), ("4", 0.95)])))
def test_the_final_holder_does_not_depend_on_arrival_order(order):
    # GIVEN four passed versions arriving in any order, each taking the alias only if it outranks the holder
    holder = None
    for version, metric in order:
        candidate = Standing(version, metric)
        if outranks(candidate, holder):
            holder = candidate
    # THEN the best metric wins, and among equals the higher version
    assert holder == Standing("4", 0.95)


def test_history_round_trips_and_stays_within_the_tag_size():
    history: list[HistoryEntry] = []
    for n in range(200):
        entry = HistoryEntry(str(n + 1), str(n) if n else None, "auto: passed validation", "autopilot", f"c{n}", "t")
        text = append_history(history, entry)
        history = parse_history(text)
    assert len(text) <= 4500
    assert history[-1].version == "200"
    assert len(history) < 200


@pytest.mark.parametrize(
    ("history", "holder", "target"),
    [
        ([], "3", None),
        ([HistoryEntry("1", None, "r", "a", "c", "t")], "1", None),  # first holder: nothing before it
        ([HistoryEntry("1", None, "r", "a", "c", "t"), HistoryEntry("3", "1", "r", "a", "c", "t")], "3", "1"),
        ([HistoryEntry("2", "1", "r", "a", "c", "t"), HistoryEntry("3", "2", "r", "a", "c", "t")], "3", "2"),
    ],
)
def test_rollback_target(history, holder, target):
    assert rollback_target(history, holder) == target


def test_an_unreadable_history_tag_reads_as_empty():
    assert parse_history("not json") == []
    assert parse_history(json.dumps([{"unexpected": 1}])) == []


# --- the use case with fakes ------------------------------------------------------------------------


def test_a_passed_version_becomes_challenger_and_champion_with_history_and_events(tmp_path):
    world = World(tmp_path)
    decisions = world.keeper.on_verdict(world.version("1", 0.9))
    assert [(d.alias, d.action) for d in decisions] == [("challenger", "moved"), ("champion", "moved")]
    assert (world.holder("challenger"), world.holder("champion")) == ("1", "1")
    assert world.moves() == [("challenger", "1", None), ("champion", "1", None)]
    [entry] = parse_history(world.registry.model_tags["churn"][history_tag("champion")])
    assert (entry.version, entry.previous, entry.actor, entry.correlation_id) == ("1", None, "autopilot", "c1")
    assert entry.verdict == "1@t1"
    # AND both aliases were decided from one read of the registered model
    assert world.registry.model_reads == ["churn"]


def test_out_of_order_verdicts_end_with_the_best_version(tmp_path):
    world = World(tmp_path)
    verdicts = {n: world.version(n, acc) for n, acc in [("1", 0.80), ("2", 0.95), ("3", 0.90)]}
    for number in ["2", "3", "1"]:
        world.keeper.on_verdict(verdicts[number])
    assert world.holder("champion") == "2"
    assert world.moves() == [("challenger", "2", None), ("champion", "2", None)]


def test_a_redelivered_verdict_does_not_move_an_alias_twice(tmp_path):
    # GIVEN v2 became champion, then was rolled back to v1
    world = World(tmp_path)
    world.keeper.on_verdict(world.version("1", 0.80))
    v2 = world.version("2", 0.95)
    world.keeper.on_verdict(v2)
    world.keeper.rollback(
        RollbackRequested(model_name="churn", alias="champion", requested_by="ops", correlation_id="r")
    )
    assert world.holder("champion") == "1"
    # WHEN v2's verdict is delivered again
    decisions = world.keeper.on_verdict(v2)
    # THEN the champion stays where the rollback put it
    assert world.holder("champion") == "1"
    assert {d.reason for d in decisions if d.alias == "champion"} == {"verdict already applied"}


def test_a_move_interrupted_after_its_history_is_completed_by_the_retry(tmp_path):
    world = World(tmp_path)
    verdict = world.version("1", 0.9)
    original = world.registry.set_alias
    world.registry.set_alias = lambda *args: (_ for _ in ()).throw(ConnectionError("MLflow went away"))
    with pytest.raises(ConnectionError, match="went away"):
        world.keeper.on_verdict(verdict)
    world.registry.set_alias = original
    world.keeper.on_verdict(verdict)
    assert world.holder("challenger") == "1"
    assert world.moves()[0] == ("challenger", "1", None)


def test_equal_metrics_go_to_the_higher_version(tmp_path):
    world = World(tmp_path)
    v3, v2 = world.version("3", 0.9), world.version("2", 0.9)
    world.keeper.on_verdict(v3)
    world.keeper.on_verdict(v2)
    assert world.holder("champion") == "3"


def test_a_failed_or_unvalidated_version_never_gets_an_alias(tmp_path):
    world = World(tmp_path)
    failed = world.version("1", 0.9, status="failed")
    assert world.keeper.on_verdict(failed) == []
    # a "passed" event for a version whose tags now say failed (re-validated since) moves nothing either
    stale = failed.model_copy(update={"status": "passed"})
    assert world.keeper.on_verdict(stale) == []
    assert world.registry.alias_writes == []


def test_approval_marks_pending_and_moves_only_when_approved(tmp_path):
    world = World(tmp_path, POLICY.replace("champion: auto", "champion: approval"))
    world.keeper.on_verdict(world.version("1", 0.9))
    # THEN challenger moved, champion is pending with a tag and an event
    assert (world.holder("challenger"), world.holder("champion")) == ("1", None)
    assert world.registry.get_version("churn", "1").tags[pending_tag("champion")] == "1@t1"
    [pending] = [e for e in world.events.published if isinstance(e, PromotionPending)]
    assert (pending.alias, pending.version) == ("champion", "1")
    # WHEN an approver promotes it
    decision = world.keeper.promote(
        PromotionRequested(model_name="churn", version="1", alias="champion", approver="alice", correlation_id="p")
    )
    # THEN it moves, records the approver, and the pending mark is gone
    assert (decision.action, world.holder("champion")) == ("moved", "1")
    assert world.moves()[-1] == ("champion", "1", None)
    assert pending_tag("champion") not in world.registry.get_version("churn", "1").tags
    [entry] = parse_history(world.registry.model_tags["churn"][history_tag("champion")])
    assert (entry.actor, entry.reason) == ("alice", "promoted by alice")


@pytest.mark.parametrize(("status", "message"), [("failed", "is failed"), ("", "is missing \\(not validated\\)")])
def test_promoting_a_version_that_did_not_pass_is_refused(tmp_path, status, message):
    world = World(tmp_path)
    world.version("1", 0.9, status=status)
    request = PromotionRequested(model_name="churn", version="1", alias="champion", approver="a", correlation_id="c")
    with pytest.raises(Rejected, match=f"cannot promote churn v1: its validation status {message}"):
        world.keeper.promote(request)
    assert world.registry.alias_writes == []


def test_rollback_with_history_goes_to_the_previous_holder(tmp_path):
    world = World(tmp_path)
    world.keeper.on_verdict(world.version("1", 0.80))
    world.keeper.on_verdict(world.version("2", 0.95))
    decision = world.keeper.rollback(
        RollbackRequested(model_name="churn", alias="champion", requested_by="bob", correlation_id="r")
    )
    assert (decision.action, decision.version, decision.previous) == ("moved", "1", "2")
    assert world.moves()[-1] == ("champion", "1", "2")
    assert parse_history(world.registry.model_tags["churn"][history_tag("champion")])[-1].reason == (
        "rolled back by bob"
    )


def test_rollback_without_history_is_refused_unless_a_version_is_named(tmp_path):
    world = World(tmp_path)
    world.version("1", 0.8)
    world.registry.aliases[("churn", "champion")] = "1"  # set by hand, outside the pipeline
    request = RollbackRequested(model_name="churn", alias="champion", requested_by="bob", correlation_id="r")
    with pytest.raises(Rejected, match="no previous holder in its history"):
        world.keeper.rollback(request)
    world.version("2", 0.7)
    decision = world.keeper.rollback(request.model_copy(update={"version": "2"}))
    assert (decision.action, world.holder("champion")) == ("moved", "2")


def test_rollback_to_a_failed_version_is_refused(tmp_path):
    world = World(tmp_path)
    world.version("1", 0.8, status="failed")
    request = RollbackRequested(model_name="churn", alias="champion", version="1", requested_by="b", correlation_id="r")
    with pytest.raises(Rejected, match="cannot roll back to churn v1"):
        world.keeper.rollback(request)


def test_replayed_verdicts_are_a_dry_run(tmp_path):
    world = World(tmp_path)
    verdict = world.version("1", 0.9).model_copy(update={"replay_name": "yesterday"})
    decisions = world.keeper.on_verdict(verdict)
    assert {d.action for d in decisions} == {"dry_run"}
    assert world.registry.alias_writes == []
    assert world.events.published == []


def test_stage_mirroring_is_opt_in_and_warns(tmp_path):
    world = World(tmp_path, POLICY + "  stages: {champion: Production}\n")
    world.keeper.on_verdict(world.version("1", 0.9))
    assert world.registry.stages == {("churn", "1"): "Production"}
    assert world.keeper.warnings == ["stage Production mirrors alias champion: MLflow deprecated stages in 2.9"]


@pytest.mark.parametrize("alias", ["latest", "LATEST", "v3", "V12", "has space", "", "a" * 256])
def test_reserved_or_invalid_aliases_are_refused_in_policies(tmp_path, alias):
    from functions.domain.policy import PolicyError, parse_policy

    with pytest.raises(PolicyError, match="promotion.aliases"):
        parse_policy(json.dumps({"promotion": {"aliases": {alias: "auto"}}}), source="p")
