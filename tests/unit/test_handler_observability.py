"""What the handlers tell an operator: one correlation id per upload in every log line, and the metrics they emit.

Read from the handlers' real output: the Powertools JSON log lines (the logger's stream, redirected) and the EMF
records the metrics print on stdout.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from functions.domain.registration import UploadedObject
from functions.handlers import aliases, register, validate
from functions.metrics import (
    BATCH_METRICS,
    BUSINESS_METRICS,
    UPLOAD_TO_REGISTERED,
    UPLOAD_TO_VALIDATED,
    service_name,
)
from functions.observability import logger, record_latency
from functions.routing import ROUTES
from functions.settings import METRICS_NAMESPACE, function_environment
from tests.builders import (
    ALIAS_POLICY,
    LADDER,
    AliasWorld,
    FakeContext,
    LadderWorld,
    RegistrationWorld,
    ValidationWorld,
    s3_event,
    sqs_event,
)
from tests.conftest import load_event
from tests.fakes import FakeQueue, OncePerIdentity

POWERTOOLS_METRICS = {"ColdStart"}  # capture_cold_start_metric=True


def emf_records(output: str) -> list[dict]:
    """(name, dimensions without `service`, values) of every metric in the EMF records printed on stdout."""
    found = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or "_aws" not in record:
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            dimensions = {d: record[d] for group in directive["Dimensions"] for d in group if d != "service"}
            for metric in directive["Metrics"]:
                values = record[metric["Name"]]
                found.append(
                    {
                        "name": metric["Name"],
                        "unit": metric["Unit"],
                        "dimensions": dimensions,
                        "values": values if isinstance(values, list) else [values],
                    }
                )
    return found


def values_of(records: list[dict], name: str) -> list[float]:
    return [value for record in records if record["name"] == name for value in record["values"]]


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict]]]:
    """The JSON lines the functions' Powertools logger writes, parsed."""
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    logger.registered_handler.setStream(previous)


@pytest.fixture
def registration():
    world = RegistrationWorld()
    deps = register.Dependencies(
        register_once=OncePerIdentity(register.registration_work(world.registrar)), queue=FakeQueue()
    )
    return world, deps


@pytest.fixture
def validation(tmp_path):
    world = ValidationWorld(tmp_path)
    return world, validate.Dependencies(validator=world.validator, queue=FakeQueue())


def s3_event_at(key: str, uploaded_at: datetime, **changes) -> str:  # type: ignore[no-untyped-def]
    event = json.loads(s3_event("aws", key))
    event["time"] = uploaded_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({**event, **changes})


def registered_event(version: str, *, uploaded_at: datetime | None, correlation_id: str) -> str:
    event = load_event("model_version_registered.json")
    artifact = {"bucket": "artifact-bucket", "key": f"models/churn/{version}/MLmodel"}
    if uploaded_at is not None:
        artifact["uploaded_at"] = uploaded_at.isoformat()
    event["detail"].update(version=version, artifact=artifact, correlation_id=correlation_id)
    return json.dumps(event)


def validation_requested(version: str, correlation_id: str) -> str:
    detail = {"model_name": "churn", "version": version, "requested_by": "ops", "correlation_id": correlation_id}
    return json.dumps(
        {**load_event("model_version_registered.json"), "detail-type": "Validation Requested", "detail": detail}
    )


# --- correlation ------------------------------------------------------------------------------------------------------


def test_every_register_log_line_carries_its_uploads_correlation_id(registration, log_lines):
    # GIVEN a batch of two uploads with a malformed record between them
    world, deps = registration
    for label in ("1", "2"):
        world.upload_model(f"models/churn/{label}")
    bodies = [s3_event("aws", "models/churn/1/MLmodel"), "{not json", s3_event("aws", "models/churn/2/MLmodel")]

    # WHEN the register function handles the batch
    register.lambda_handler(sqs_event(*bodies), FakeContext(), dependencies=deps)

    # THEN each upload's log lines carry the correlation id its events carry (the id of the upload's identity)
    lines = log_lines()
    expected = {}
    for index, event in ((0, world.events.published[0]), (2, world.events.published[1])):
        body = json.loads(bodies[index])
        upload = UploadedObject(
            bucket=body["detail"]["bucket"]["name"],
            key=body["detail"]["object"]["key"],
            etag=body["detail"]["object"]["etag"],
            version_id=body["detail"]["object"]["version-id"],
        )
        assert event.correlation_id == upload.correlation_id
        expected[f"msg-{index}"] = event.correlation_id
    by_message = {m: [line for line in lines if line.get("message_id") == m] for m in ("msg-0", "msg-1", "msg-2")}
    assert by_message["msg-0"]
    assert by_message["msg-2"]
    for message_id, correlation_id in expected.items():
        assert {line.get("correlation_id") for line in by_message[message_id]} == {correlation_id}
    # AND the malformed record's lines carry no correlation id, not the previous record's
    assert by_message["msg-1"], "the rejection is logged"
    assert all("correlation_id" not in line for line in by_message["msg-1"])


def test_every_validate_log_line_carries_the_events_correlation_id(validation, log_lines):
    # GIVEN two registered versions, one that passes and one that fails
    world, deps = validation
    world.version("1", accuracy=0.9)
    world.version("2", accuracy=0.1)
    bodies = [
        registered_event("1", uploaded_at=None, correlation_id="corr-upload-1"),
        registered_event("2", uploaded_at=None, correlation_id="corr-upload-2"),
    ]

    # WHEN the validate function handles them
    validate.lambda_handler(sqs_event(*bodies), FakeContext(), dependencies=deps)

    # THEN every line about a record carries that record's correlation id, which its verdict event carries on
    lines = log_lines()
    assert [e.correlation_id for e in world.events.published] == ["corr-upload-1", "corr-upload-2"]
    for index, correlation_id in enumerate(["corr-upload-1", "corr-upload-2"]):
        record_lines = [line for line in lines if line.get("message_id") == f"msg-{index}"]
        assert any(line["message"].startswith("validation ") for line in record_lines)
        assert {line.get("correlation_id") for line in record_lines} == {correlation_id}


# --- latency from upload --------------------------------------------------------------------------------------------


def test_register_measures_upload_to_registration(registration, capsys):
    # GIVEN an upload made 42 seconds ago
    world, deps = registration
    world.upload_model("models/churn/1")
    body = s3_event_at("models/churn/1/MLmodel", datetime.now(UTC) - timedelta(seconds=42))

    # WHEN it is registered, and the same event is delivered twice more
    register.lambda_handler(sqs_event(body, body, body), FakeContext(), dependencies=deps)

    # THEN one latency value is emitted, in seconds, for the one new version (not for the duplicates)
    records = emf_records(capsys.readouterr().out)
    [seconds] = values_of(records, UPLOAD_TO_REGISTERED)
    assert 42 <= seconds < 42 + 30
    assert {r["unit"] for r in records if r["name"] == UPLOAD_TO_REGISTERED} == {"Seconds"}


def test_a_replayed_upload_is_registered_but_its_age_is_no_latency(registration, capsys):
    # GIVEN an archived event replayed a week after its upload
    world, deps = registration
    world.upload_model("models/churn/1")
    body = s3_event_at("models/churn/1/MLmodel", datetime.now(UTC) - timedelta(days=7), **{"replay-name": "recovery"})

    # WHEN it is handled
    register.lambda_handler(sqs_event(body), FakeContext(), dependencies=deps)

    # THEN the version is registered and counted, without a week-long "latency"
    records = emf_records(capsys.readouterr().out)
    assert values_of(records, "VersionRegistered") == [1.0]
    assert values_of(records, UPLOAD_TO_REGISTERED) == []


def test_validate_measures_upload_to_verdict_and_passes_the_upload_time_on(validation, capsys):
    # GIVEN a version registered from an upload made 90 seconds ago
    world, deps = validation
    world.version("1", accuracy=0.9)
    uploaded_at = datetime.now(UTC) - timedelta(seconds=90)

    # WHEN its Model Version Registered event is handled
    validate.lambda_handler(
        sqs_event(registered_event("1", uploaded_at=uploaded_at, correlation_id="c1")),
        FakeContext(),
        dependencies=deps,
    )

    # THEN the latency is emitted, and the verdict event carries the upload time for the alias step
    [seconds] = values_of(emf_records(capsys.readouterr().out), UPLOAD_TO_VALIDATED)
    assert 90 <= seconds < 90 + 30
    assert world.events.published[0].uploaded_at == uploaded_at


def test_a_re_validation_is_no_latency(validation, capsys):
    # GIVEN a version re-validated on request, long after its upload
    world, deps = validation
    world.version("1", accuracy=0.9)

    # WHEN the Validation Requested event is handled
    validate.lambda_handler(sqs_event(validation_requested("1", "c-ops")), FakeContext(), dependencies=deps)

    # THEN the verdict is counted, with no latency and no upload time on the verdict
    records = emf_records(capsys.readouterr().out)
    assert values_of(records, "ValidationPassed") == [1.0]
    assert values_of(records, UPLOAD_TO_VALIDATED) == []
    assert world.events.published[0].uploaded_at is None


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (datetime(2026, 11, 20, 11, 59, 30, tzinfo=UTC), 30.0),
        (datetime(2026, 11, 20, 11, 59, 50), 10.0),  # naive: read as UTC
        (datetime(2026, 11, 20, 12, 0, 3, tzinfo=UTC), 0.0),  # a clock behind S3's: not negative
    ],
)
def test_record_latency_emits_seconds_since_the_upload(since, expected, capsys):
    # GIVEN a fixed now
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    # WHEN a latency is recorded and the metrics are flushed
    from functions.observability import metrics

    assert record_latency("UploadToTestSeconds", since, now=now) == expected
    metrics.flush_metrics()
    # THEN the EMF record holds that value in seconds
    records = emf_records(capsys.readouterr().out)
    assert values_of(records, "UploadToTestSeconds") == [expected]


def test_record_latency_without_an_upload_time_emits_nothing(capsys):
    # GIVEN no upload time
    # WHEN a latency is recorded
    # THEN nothing is emitted
    assert record_latency("UploadToTestSeconds", None) is None
    from functions.observability import metrics

    metrics.flush_metrics(raise_on_empty_metrics=False)
    assert values_of(emf_records(capsys.readouterr().out), "UploadToTestSeconds") == []


# --- the catalogue the dashboard draws ---------------------------------------------------------------------------------


def _register_scenarios(capsys) -> list[dict]:  # type: ignore[no-untyped-def]
    world = RegistrationWorld()
    deps = register.Dependencies(
        register_once=OncePerIdentity(register.registration_work(world.registrar)), queue=FakeQueue()
    )
    world.upload_model("models/churn/1")
    world.upload_model("models/churn/2", files=())  # incomplete: deferred
    good = s3_event_at("models/churn/1/MLmodel", datetime.now(UTC) - timedelta(seconds=5))
    bodies = [
        good,
        good,  # duplicate
        s3_event("aws", "models/churn/2/MLmodel"),
        s3_event("aws", "elsewhere/thing/MLmodel"),  # not a layout this pipeline registers: skipped
        json.dumps(load_event("s3_object_deleted_aws.json")),  # skipped
        "{broken",  # rejected
    ]
    register.lambda_handler(sqs_event(*bodies), FakeContext(), dependencies=deps)
    world.registry.down = True
    world.upload_model("models/churn/3")
    register.lambda_handler(sqs_event(s3_event("aws", "models/churn/3/MLmodel")), FakeContext(), dependencies=deps)
    return emf_records(capsys.readouterr().out)


def _validate_scenarios(tmp_path, capsys) -> list[dict]:  # type: ignore[no-untyped-def]
    world = ValidationWorld(tmp_path)
    deps = validate.Dependencies(validator=world.validator, queue=FakeQueue())
    world.version("1", accuracy=0.9)
    world.version("2", accuracy=0.1)
    bodies = [
        registered_event("1", uploaded_at=datetime.now(UTC), correlation_id="a"),
        registered_event("2", uploaded_at=datetime.now(UTC), correlation_id="b"),
        registered_event("404", uploaded_at=None, correlation_id="c"),  # deleted version: skipped
        validation_requested("1", "d"),
        "{broken",
    ]
    validate.lambda_handler(sqs_event(*bodies), FakeContext(), dependencies=deps)
    world.registry.down = True
    validate.lambda_handler(sqs_event(validation_requested("1", "e")), FakeContext(), dependencies=deps)
    return emf_records(capsys.readouterr().out)


def _verdict(world, number: str, **changes) -> str:  # type: ignore[no-untyped-def]
    detail = world.version(number, 0.9).model_copy(update=changes)
    event = {**load_event("model_version_registered.json"), "detail-type": "Model Version Validated"}
    event["detail"] = json.loads(detail.model_dump_json())
    return json.dumps(event)


def _aliases_scenarios(tmp_path, capsys) -> list[dict]:  # type: ignore[no-untyped-def]
    world = AliasWorld(tmp_path, ALIAS_POLICY.replace("champion: auto", "champion: approval"))
    deps = aliases.Dependencies(keeper=world.keeper, queue=FakeQueue())
    first = _verdict(world, "1", uploaded_at=datetime.now(UTC) - timedelta(seconds=3))
    bodies = [
        first,  # challenger moves, champion awaits approval
        first,  # redelivered: kept
        _verdict(world, "2", replay_name="yesterday"),  # replayed: dry run
        "{broken",  # rejected
    ]
    for body in bodies:  # one record per batch, as the FIFO route delivers them
        aliases.lambda_handler(sqs_event(body), FakeContext(), dependencies=deps)
    world.registry.down = True
    aliases.lambda_handler(sqs_event(_verdict(world, "3")), FakeContext(), dependencies=deps)
    _ladder_scenarios(tmp_path)
    return emf_records(capsys.readouterr().out)


def _promotion_request(environment: str, **detail: str) -> str:
    event = {**load_event("model_version_registered.json"), "detail-type": "Environment Promotion Requested"}
    fields = {"model_name": "churn", "version": "1", "environment": environment, "requested_by": "ci"}
    event["detail"] = {**fields, "correlation_id": "c-ladder", **detail}
    return json.dumps(event)


def _ladder_scenarios(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Promotion requests through the aliases function: copied forward, again (kept), replayed, and into a rung that
    re-runs the gate first."""
    revalidating = LADDER.replace(
        "aliases: [challenger]}\n    - name: prod", "aliases: [challenger], revalidate: true}\n    - name: prod"
    )
    for name, policy, bodies in (
        (
            "plain",
            LADDER,
            [
                _promotion_request("staging"),
                _promotion_request("staging"),
                _promotion_request("staging", replay_name="r"),
            ],
        ),
        ("revalidating", revalidating, [_promotion_request("staging")]),
    ):
        (tmp_path / name).mkdir()
        world = LadderWorld(tmp_path / name, policy)
        world.upload("1")
        deps = aliases.Dependencies(keeper=world.keeper, queue=FakeQueue(), climber=world.climber)
        for body in bodies:
            aliases.lambda_handler(sqs_event(body), FakeContext(), dependencies=deps)


_SCENARIOS = {
    "register": lambda tmp_path, capsys: _register_scenarios(capsys),
    "validate": _validate_scenarios,
    "aliases": _aliases_scenarios,
}


@pytest.mark.parametrize("route_name", ["register", "validate", "aliases"])
def test_every_metric_a_handler_emits_is_in_its_routes_catalogue(route_name, tmp_path, capsys):
    # GIVEN the route's catalogue entry (what the dashboard draws)
    catalogue = {metric.name: metric for metric in BUSINESS_METRICS.get(route_name, ()) + BATCH_METRICS}

    # WHEN the handler runs through its outcomes: success, duplicate, skip, defer, reject, outage
    records = _SCENARIOS[route_name](tmp_path, capsys)

    # THEN every metric it emitted is listed, with the dimension and unit the catalogue gives it
    emitted = {r["name"] for r in records} - POWERTOOLS_METRICS
    assert emitted <= set(catalogue), emitted - set(catalogue)
    for record in (r for r in records if r["name"] in catalogue):
        metric = catalogue[record["name"]]
        assert set(record["dimensions"]) == ({metric.dimension} if metric.dimension else set()), record
        assert record["unit"] == metric.unit.value, record
    # AND the scenarios reached all of the route's own metrics, so the check above is not vacuous
    assert {m.name for m in BUSINESS_METRICS[route_name]} <= emitted


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_every_route_has_a_catalogue_entry_and_the_service_name_its_function_gets(route):
    # GIVEN a route's function environment, as the stack and the sandbox build it
    env = function_environment(
        route,
        bucket="b",
        artifact_root_prefix="mlflow",
        event_bus_name="bus",
        idempotency_table="t",
        queue_url="q",
        dead_letter_queue_url="d",
        tracking_uri="https://mlflow.example.com",
    )
    # WHEN we compare it with what the dashboard queries
    # THEN the service dimension and the namespace are the same, and the route's metrics are catalogued
    assert env["POWERTOOLS_SERVICE_NAME"] == service_name(route.name)
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert BUSINESS_METRICS[route.name]
