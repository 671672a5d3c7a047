"""The fast subset of `make reliability`: the same scenario code, small sizes, each in a fresh sandbox.

The full sizes (100 × 3 deliveries, a 30 s outage, 500 uploads in a minute, 20 uploads through AWS faults, a 30 s
frozen emulator) run with `make reliability`.
"""

from __future__ import annotations

import json

from reliability.aws_scenarios import EXPECTED_REASONS, aws_faults, emulator_outage
from reliability.hostile import CASES, hostile
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
    # GIVEN at least 30 hostile inputs (objects, forged S3 events, raw messages, forged project events)
    assert len(CASES) >= 30
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


def test_burst_never_exceeds_the_concurrency_cap() -> None:
    # GIVEN 5 register and 2 validate workers behind a counting proxy in front of MLflow
    # WHEN 40 models upload within 5 seconds
    result = burst(uploads=40, within_seconds=5.0)
    # THEN every upload is registered and validated once, and MLflow never saw more requests at once than the cap
    observed = result.observed
    assert observed["versions"] == observed["distinct_sources"] == observed["validated"] == 40, observed
    assert 1 <= observed["peak_concurrent_mlflow_requests"] <= observed["cap"] == 8, observed
    assert observed["dead_letters"] == {"register": 0, "validate": 0, "aliases": 0}


def test_aws_faults_are_retried_with_their_reason_and_lose_nothing() -> None:
    # GIVEN the route workers reaching AWS through a proxy injecting S3 SlowDown, DynamoDB throttles, EventBridge
    # throttling and failed entries, and Secrets Manager errors, each outlasting botocore's 3 attempts
    # WHEN 6 models upload
    result = aws_faults(uploads=6, models=2)
    observed = result.observed
    # THEN every fault was injected, and each surfaced as a retry logged (and counted) with its reason and record
    assert observed["every_fault_injected"] is True, observed["faults"]
    assert EXPECTED_REASONS <= set(observed["retries_logged"]), observed["retries_logged"]
    assert observed["retried_metrics"] == observed["retries_logged"]
    assert observed["retry_lines_without_their_record"] == []
    # AND every upload is one version with a verdict and the right champion, and nothing was dead-lettered
    assert observed["versions"] == observed["distinct_sources"] == 6, observed
    assert observed["without_verdict"] == 0
    assert observed["wrong_champions"] == []
    assert observed["dead_letters"] == {"register": 0, "validate": 0, "aliases": 0}
    assert result.ok


def test_an_emulator_frozen_while_uploads_arrive_loses_no_delivered_upload() -> None:
    # GIVEN moto frozen (SIGSTOP) for 5 s while 4 models upload, then continued
    result = emulator_outage(uploads=4, outage_seconds=5.0, models=2)
    observed = result.observed
    # THEN every upload landed once it came back, and each is one version with a verdict; nothing dead-lettered
    assert observed["uploads_failed"] == []
    assert observed["versions"] == observed["distinct_sources"] == observed["expected_versions"] == 4, observed
    assert observed["without_verdict"] == 0
    assert observed["dead_letters"] == {"register": 0, "validate": 0, "aliases": 0}
    assert result.ok
