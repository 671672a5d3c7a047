"""The fast subset of `make reliability`, duplicates, poison, hostile input and bursts: the same scenario code at
small sizes, each in a fresh sandbox.

Crashes, hangs and faults of the parts are `test_reliability_faults.py` (two files, so `make test`'s processes
share them).

The full sizes (100 × 3 deliveries, a 30 s outage, 500 uploads in a minute) run with `make reliability`.
"""

from __future__ import annotations

import json

from reliability.hostile import CASES, WEBHOOK_CASES, hostile
from reliability.scenarios import burst, duplicates, poison


def test_duplicate_deliveries_make_one_version_each() -> None:
    # GIVEN 10 artifacts whose events are each delivered three times, shuffled
    # WHEN the pipeline has handled them all
    result = duplicates(artifacts=10)
    # THEN there are exactly 10 versions, one per artifact, and nothing was dead-lettered
    assert result.observed["versions"] == 10, result.observed
    assert result.observed["distinct_sources"] == 10, result.observed
    assert result.observed["dead_letters"] == {"register": 0, "validate": 0, "aliases": 0}
    assert result.ok


def test_poison_reaches_the_dlq_with_its_reason_and_redrive_registers_it() -> None:
    # GIVEN a register route giving up after 2 receives and a registry that is down
    # WHEN two uploads fail until they are dead-lettered, the registry comes back and the DLQ is redriven
    result = poison(max_receive_count=2, letters=2)
    # THEN both letters reached the DLQ, each with a logged reason, and both registered after the redrive
    assert result.observed["dead_lettered"] == 2, result.observed
    assert result.observed["logged_reasons"] == ["registry_unavailable"], result.observed
    assert result.observed["every_letter_has_a_logged_reason"] is True
    assert result.observed["redriven"] == 2
    assert result.observed["registered_after_redrive"] == 2
    assert result.observed["dead_letters_after"] == {"register": 0, "validate": 0, "aliases": 0}


def test_hostile_inputs_are_refused_with_a_reason_and_change_nothing() -> None:
    # GIVEN at least 30 hostile inputs (objects, forged S3 events, raw messages, forged project events), and hostile
    # webhook deliveries (forged, unsigned, expired, from the future, replayed, oversized, wrong content type or
    # method, not MLflow's payload, event types that are not forwarded)
    assert len(CASES) >= 30
    assert len(WEBHOOK_CASES) >= 10
    # WHEN they go through the real pipeline
    result = hostile()
    # THEN each was refused with a logged or dead-lettered reason, no worker died, and the registry holds no
    # unexpected version and no alias move
    observed = result.observed
    assert observed["without_evidence"] == [], json.dumps(observed["outcomes"], indent=1)
    assert observed["refused_with_reason"] == len(CASES)
    assert observed["wrong_registrations"] == []
    assert observed["hostile_versions_not_failed"] == []
    assert observed["alias_moves_on_hostile_models"] == []
    assert observed["bystander_aliases_unchanged"] is True
    # AND each webhook delivery got its status, with the same reason in the answer and the function's log line, and
    # none of them published an event
    assert observed["webhook_unexpected"] == [], json.dumps(observed["outcomes"], indent=1)
    assert observed["webhook_as_expected"] == len(WEBHOOK_CASES)
    assert observed["webhook_published"] == []
    assert result.ok


def test_burst_never_exceeds_the_concurrency_cap() -> None:
    # GIVEN 5 register and 2 validate workers behind a counting proxy in front of MLflow
    # WHEN 40 models upload within 5 seconds
    result = burst(uploads=40, within_seconds=5.0)
    # THEN every upload is registered and validated once, and MLflow never saw more requests at once than the cap
    observed = result.observed
    assert observed["versions"] == observed["distinct_sources"] == observed["validated"] == 40, observed
    assert 1 <= observed["peak_concurrent_mlflow_requests"] <= observed["cap"] == 8, observed
    assert observed["dead_letters"] == {"register": 0, "validate": 0, "aliases": 0}
