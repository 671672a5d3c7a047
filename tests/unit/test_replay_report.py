"""What `replay local` says happened: attribution of the evidence, and deterministic output."""

from __future__ import annotations

from functions.domain.tags import IDENTITY_TAG, origin_tag
from functions.models.dead_letters import DeadLetter
from replay.report import Injection, correlate, format_outcome, format_registry, stable
from sandbox.worker import WORKER_LOGGER

KEY = "models/churn/1/MLmodel"
BUCKET = "sandbox-bucket"


def _invoking(route: str, message_id: str, event_id: str) -> dict:
    return {
        "logger": WORKER_LOGGER,
        "message": "invoking handler",
        "route": route,
        "records": [{"messageId": message_id, "eventId": event_id, "key": KEY}],
        "worker": route,
    }


def _handler_line(message_id: str, message: str, **extra: str) -> dict:
    return {"level": "INFO", "message": message, "message_id": message_id, "worker": "register", **extra}


def _registered(correlation_id: str, version: str = "1") -> dict:
    return {
        "id": f"emitted-{version}",
        "detail-type": "Model Version Registered",
        "source": "registry-autopilot",
        "time": "2026-11-26T10:00:00Z",
        "detail": {
            "model_name": "churn",
            "version": version,
            "source_uri": f"s3://{BUCKET}/models/churn/1",
            "correlation_id": correlation_id,
            "already_registered": False,
            "artifact": {"bucket": BUCKET, "key": KEY, "version_id": "random", "etag": "e"},
        },
    }


def _injection(event_id: str, label: str) -> Injection:
    return Injection(
        label=label,
        source="aws.s3",
        detail_type="Object Created",
        bus="default",
        event_id=event_id,
        key=KEY,
        bucket=BUCKET,
    )


def test_evidence_is_attributed_to_the_event_that_caused_it() -> None:
    # GIVEN two injected events for the same upload: the first registered it, the second was a duplicate
    injections = [_injection("e-1", "first.json"), _injection("e-2", "second.json")]
    lines = [
        _invoking("register", "m-1", "e-1"),
        _handler_line("m-1", "model version registered", correlation_id="c-1"),
        _invoking("register", "m-2", "e-2"),
        _handler_line("m-2", "duplicate delivery: already handled", correlation_id="c-1"),
    ]

    # WHEN the evidence is correlated
    first, second = correlate(injections, observed=[_registered("c-1")], dead_letters=[], log_lines=lines)

    # THEN the registration belongs to the first, the duplicate note to the second
    assert first.routes == ["register"]
    assert second.routes == ["register"]
    assert first.registered == [
        {"model": "churn", "version": "1", "source": f"s3://{BUCKET}/models/churn/1", "already_registered": False}
    ]
    assert second.emitted == []
    assert [note["message"] for note in second.notes] == ["duplicate delivery: already handled"]


def test_an_event_no_rule_matched_is_not_credited_with_a_registration_of_the_same_object() -> None:
    # GIVEN a delete event of an object (no rule matched it), injected before the upload event that registered it
    injections = [_injection("e-1", "delete-event.json"), _injection("e-2", "plain-upload.json")]
    lines = [
        _invoking("register", "m-2", "e-2"),
        _handler_line("m-2", "model version registered", correlation_id="c-2"),
    ]

    # WHEN the evidence is correlated
    deleted, uploaded = correlate(injections, observed=[_registered("c-2")], dead_letters=[], log_lines=lines)

    # THEN the registration belongs to the upload, whose handler logged its correlation id
    assert deleted.emitted == []
    assert [item["model"] for item in uploaded.registered] == ["churn"]


def test_an_event_is_matched_by_its_object_when_no_correlation_id_was_logged() -> None:
    # GIVEN an injected upload whose handler lines carry no correlation id
    injections = [_injection("e-1", "upload.json")]
    lines = [_invoking("register", "m-1", "e-1"), _handler_line("m-1", "model version registered")]

    # WHEN the evidence is correlated
    (upload,) = correlate(injections, observed=[_registered("c-9")], dead_letters=[], log_lines=lines)

    # THEN the registration naming its object is attributed to it
    assert [item["model"] for item in upload.registered] == ["churn"]


def test_dead_letters_skips_and_unrouted_events_are_reported() -> None:
    # GIVEN a dead-lettered event, a skipped one, and one no rule matched
    injections = [_injection("e-1", "bad.json"), _injection("e-2", "skip.json"), _injection("e-3", "deleted.json")]
    lines = [
        _invoking("register", "m-1", "e-1"),
        {**_handler_line("m-1", "rejected: sent to the dead-letter queue", reason="malformed_event"), "level": "ERROR"},
        _invoking("register", "m-2", "e-2"),
        _handler_line("m-2", "skipped", reason="not_a_model_location"),
    ]
    letter = DeadLetter(
        route="register",
        message_id="d-1",
        body="{}",
        event={"id": "e-1"},
        reason="malformed_event",
        error="not an S3 object event",
        receive_count=1,
        attributes={},
    )

    # WHEN the evidence is correlated
    bad, skipped, unrouted = correlate(injections, observed=[], dead_letters=[letter], log_lines=lines)

    # THEN each says what happened to it
    assert bad.dead_letters == [{"route": "register", "reason": "malformed_event", "error": "not an S3 object event"}]
    assert skipped.as_dict()["skips"] == [{"route": "register", "message": "skipped", "reason": "not_a_model_location"}]
    assert unrouted.routes == []
    assert unrouted.notes == []


def test_repeated_handler_lines_are_folded() -> None:
    # GIVEN an event deferred three times
    injections = [_injection("e-1", "slow.json")]
    lines = [_invoking("register", f"m-{n}", "e-1") for n in range(3)] + [
        _handler_line(f"m-{n}", "not ready: re-enqueued", reason="incomplete_upload") for n in range(3)
    ]

    # WHEN the evidence is correlated
    (outcome,) = correlate(injections, observed=[], dead_letters=[], log_lines=lines)

    # THEN the note appears once, with a count
    assert outcome.notes == [
        {
            "route": "register",
            "level": "INFO",
            "message": "not ready: re-enqueued",
            "reason": "incomplete_upload",
            "times": 3,
        }
    ]


def test_output_leaves_out_values_that_change_between_runs() -> None:
    # GIVEN an emitted event's detail and a version's tags
    detail = _registered("c-1")["detail"]
    tags = {origin_tag("key"): KEY, origin_tag("version_id"): "v", origin_tag("uploaded_at"): "t", IDENTITY_TAG: "i"}

    # WHEN they are made stable
    # THEN version ids, times, identities and correlation ids are gone, the rest is kept (sorted)
    assert stable(detail) == {
        "already_registered": False,
        "artifact": {"bucket": BUCKET, "etag": "e", "key": KEY},
        "model_name": "churn",
        "source_uri": f"s3://{BUCKET}/models/churn/1",
        "version": "1",
    }
    assert stable(tags) == {origin_tag("key"): KEY}


def test_an_outcome_reads_the_same_every_time() -> None:
    # GIVEN a registered event's outcome
    injections = [_injection("e-1", "event.json")]
    lines = [
        _invoking("register", "m-1", "e-1"),
        _handler_line("m-1", "model version registered", correlation_id="c-1"),
    ]
    (outcome,) = correlate(injections, observed=[_registered("c-1")], dead_letters=[], log_lines=lines)

    # WHEN it is formatted
    text = format_outcome(outcome, position=1, total=1)

    # THEN it is plain, stable text
    assert text == (
        f"[1/1] event.json: aws.s3 Object Created {KEY}\n"
        "  delivered to  register\n"
        f"  registered    churn v1 from s3://{BUCKET}/models/churn/1\n"
        "  emitted       Model Version Registered (churn v1)\n"
        "  handler       register: model version registered"
    )


def test_the_registry_is_formatted() -> None:
    # GIVEN a registry state
    models = [
        {
            "name": "churn",
            "aliases": {"champion": "1"},
            "versions": [{"version": "1", "source": "s3://b/models/churn/1", "run_id": None}],
        }
    ]

    # WHEN it is printed
    # THEN each version is under its model, aliases beside it
    assert format_registry(models) == "Registry:\n  churn  aliases: champion=v1\n    v1  s3://b/models/churn/1"
    assert format_registry([]) == "Registry: no registered models"
