"""The fast subset of `make reliability`, crashes, hangs and faults: killed workers, a hung MLflow, AWS faults, a
frozen emulator. The same scenario code at small sizes, each in a fresh sandbox (bad input: `test_reliability.py`).

The full sizes (3 kills per route, a 40 s hang, 20 uploads through AWS faults, a 30 s frozen emulator) run with
`make reliability`.
"""

from __future__ import annotations

from functions.routing import REGISTER
from reliability.aws_scenarios import EXPECTED_REASONS, aws_faults, emulator_outage
from reliability.scenarios import crash, hang


def test_route_workers_killed_mid_batch_are_replaced_and_every_upload_lands_once() -> None:
    # GIVEN 8 uploads in flight, and queues whose visibility timeout is the function timeout (60 s)
    # WHEN the register worker is SIGKILLed inside a registration, then the validate and the aliases workers mid-batch
    result = crash(uploads=8, models=2, kills_per_route=1, upload_seconds=8.0, visibility_timeout_seconds=60)
    observed = result.observed
    # THEN each was replaced, and the register kill left an idempotency record in progress
    assert observed["kills"] == {"register": 1, "validate": 1, "aliases": 1}, observed
    assert observed["replacements"] == 3
    assert observed["replacements_ended"] == ["killed by SIGKILL"]
    assert observed["in_progress_records_left_by_register_kills"] >= 1, observed
    # AND once the killed batches came back, every upload is registered once with one verdict, the champions are
    # the best versions, no alias moved twice on one verdict, no record is left in progress and no DLQ has a letter
    assert observed["versions"] == observed["distinct_sources"] == 8, observed
    assert observed["without_verdict"] == 0
    assert observed["versions_with_conflicting_verdicts"] == []
    assert observed["wrong_champions"] == []
    assert observed["alias_moved_twice"] == []
    assert observed["in_progress_records_at_end"] == 0
    assert observed["dead_letters"] == {"register": 0, "validate": 0, "aliases": 0}
    assert result.ok


def test_a_hung_mlflow_turns_into_retries_not_timeouts_and_everything_lands_once() -> None:
    # GIVEN an MLflow server frozen (it accepts connections and never answers) for 15 s while 6 models upload
    # AND apart, 2 uploads against a frozen MLflow with a register route giving up after 2 receives
    result = hang(uploads=6, models=2, hang_seconds=15.0, dead_letter_uploads=2, dead_letter_max_receive_count=2)
    observed = result.observed
    # THEN records were handed back for retry as `registry_unavailable`, no batch ran into the function timeout
    # and no worker had to be replaced
    assert observed["retries_logged"] >= 1, observed
    assert observed["timed_out_batches"] == 0
    assert observed["worker_replacements"] == 0
    assert observed["function_timeout_seconds"] == REGISTER.timeout_seconds
    # AND after the hang every upload is registered once, with one verdict, and nothing was dead-lettered
    assert observed["versions"] == observed["distinct_sources"] == 6, observed
    assert observed["without_verdict"] == 0
    assert observed["versions_with_conflicting_verdicts"] == []
    assert observed["alias_moved_twice"] == []
    assert observed["dead_letters"] == {"register": 0, "validate": 0, "aliases": 0}
    # AND a hang that lasts reaches the DLQ after the route's receives, like an outage
    assert observed["dead_lettered"] == 2, observed
    assert result.ok


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
