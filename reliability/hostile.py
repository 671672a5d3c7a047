"""Hostile inputs fed through a real sandbox: each must be refused with a logged reason, and change nothing.

A case is an object written to the bucket (its S3 event comes as usual), an event put on a bus, or a raw
message put on a route's queue (what a broken or forged producer could deliver). Every case carries a
marker, so its evidence is found by it: a dead letter whose body holds it (with its `reason` attribute) or a
worker log line holding it with a `reason`. After all cases, the registry must hold no alias and no version
but the ones the metric cases expect (registered, then failed by validation).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.domain.validation import verdict_record
from reliability.scenarios import MLMODEL, Result, fresh_sandbox, put_events, s3_event, upload_model
from replay.sandbox import Sandbox

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@dataclass(frozen=True)
class Case:
    name: str
    route: str
    send: Callable[[Sandbox, str], None]
    """Delivers the case; gets the sandbox and the case's marker (a safe key segment)."""
    expect_version: bool = False
    """True for a version that may be registered but must fail validation (NaN metrics)."""


def _object(mlmodel: str | bytes, *, metrics: str | None = None) -> Callable[[Sandbox, str], None]:
    def send(sandbox: Sandbox, marker: str) -> None:
        prefix = f"models/{marker}/1/"
        sandbox.put_object(prefix + "python_env.yaml", "python: 3.11.7\n")
        if metrics is not None:
            sandbox.put_object(prefix + "metrics.json", metrics)
        sandbox.put_object(prefix + "MLmodel", mlmodel)

    return send


def _event(
    detail: Callable[[Sandbox, str], dict], detail_type: str = "Object Created"
) -> Callable[[Sandbox, str], None]:
    """An S3-like event for the register queue, sent straight to it (what a forged or broken producer delivers)."""

    def send(sandbox: Sandbox, marker: str) -> None:
        event = {
            "version": "0",
            "id": marker,
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": "123456789012",
            "time": "2026-11-26T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail(sandbox, marker),
        }
        _raw(json.dumps(event))(sandbox, marker)

    return send


def _raw(body: str, route: str = "register") -> Callable[[Sandbox, str], None]:
    def send(sandbox: Sandbox, marker: str) -> None:
        queue_url = sandbox.wiring[route].queue_url
        fifo = {"MessageGroupId": "alias-moves"} if queue_url.endswith(".fifo") else {}
        sandbox.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body.replace("MARKER", marker), **fifo)

    return send


def _key_detail(key: str, **object_fields: Any) -> Callable[[Sandbox, str], dict]:
    def detail(sandbox: Sandbox, marker: str) -> dict:
        return {
            "bucket": {"name": sandbox.bucket},
            "object": {"key": key.replace("MARKER", marker), "size": 100, "etag": "0" * 32, **object_fields},
        }

    return detail


def _project(detail_type: str, detail: dict, route: str) -> Callable[[Sandbox, str], None]:
    def send(sandbox: Sandbox, marker: str) -> None:
        body = {
            "version": "0",
            "id": marker,
            "detail-type": detail_type,
            "source": "registry-autopilot",
            "account": "123456789012",
            "time": "2026-11-26T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": json.loads(json.dumps(detail).replace("MARKER", marker)),
        }
        _raw(json.dumps(body), route)(sandbox, marker)

    return send


def _valid_but_from(bucket: str) -> Callable[[Sandbox, str], dict]:
    return lambda sandbox, marker: {
        "bucket": {"name": bucket},
        "object": {"key": f"models/{marker}/1/MLmodel", "size": 10},
    }


def _put_bus(detail_overrides: dict) -> Callable[[Sandbox, str], None]:
    def send(sandbox: Sandbox, marker: str) -> None:
        key = f"models/{marker}/1/MLmodel"
        sandbox._set_bucket_notifications(enabled=False)  # only the lying event announces it
        try:
            sandbox.put_object(key, MLMODEL)  # the object exists; the event about it lies
        finally:
            sandbox._set_bucket_notifications(enabled=True)
        put_events(
            sandbox, [s3_event(sandbox, key, **json.loads(json.dumps(detail_overrides).replace("MARKER", marker)))]
        )

    return send


CASES: list[Case] = [
    # Objects in the bucket (their real S3 event goes through the rule).
    Case("mlmodel not YAML", "register", _object("flavors: [unclosed\n  : :")),
    Case("mlmodel a YAML list", "register", _object("- a\n- b\n")),
    Case("mlmodel a scalar", "register", _object("just text")),
    Case("mlmodel empty", "register", _object("")),
    Case("mlmodel without flavors", "register", _object("mlflow_version: 3.17.2\n")),
    Case("mlmodel flavors wrong type", "register", _object("flavors: 42\n")),
    Case("mlmodel YAML bomb", "register", _object(BOMB)),
    Case("mlmodel 50 MB", "register", _object(b"flavors: {}\n#" + b"x" * (50 * 1024 * 1024))),
    Case("mlmodel binary", "register", _object(bytes(range(256)) * 4)),
    Case("mlmodel python object tag", "register", _object('flavors: !!python/object/apply:os.system ["true"]\n')),
    Case("metric NaN", "validate", _object(MLMODEL, metrics='{"accuracy": NaN}'), expect_version=True),
    Case("metric Infinity", "validate", _object(MLMODEL, metrics='{"accuracy": Infinity}'), expect_version=True),
    Case("metric -Infinity", "validate", _object(MLMODEL, metrics='{"accuracy": -Infinity}'), expect_version=True),
    Case("metrics not JSON", "validate", _object(MLMODEL, metrics="{accuracy: "), expect_version=True),
    Case("metric a string", "validate", _object(MLMODEL, metrics='{"accuracy": "0.99"}'), expect_version=True),
    # Events with hostile keys, delivered to the register queue.
    Case("key path traversal", "register", _event(_key_detail("models/MARKER/../../etc/MLmodel"))),
    Case("key absolute traversal", "register", _event(_key_detail("../../MARKER/MLmodel"))),
    Case("key control character", "register", _event(_key_detail("models/MARKER\x1b[2J/1/MLmodel"))),
    Case("key NUL byte", "register", _event(_key_detail("models/MARKER\x00/1/MLmodel"))),
    Case("key right-to-left override", "register", _event(_key_detail("models/MARKER\u202e/1/MLmodel"))),
    Case("key unicode model name", "register", _event(_key_detail("models/modèle-MARKER/1/MLmodel"))),
    Case(
        "key 10,000-character model name",
        "register",
        _event(_key_detail("models/MARKER" + "m" * 10_000 + "/1/MLmodel")),
    ),
    Case("key 300-character model name", "register", _event(_key_detail("models/MARKER" + "m" * 300 + "/1/MLmodel"))),
    Case("key empty segment", "register", _event(_key_detail("models//MARKER/MLmodel"))),
    Case("key with space", "register", _event(_key_detail("models/MARKER x/1/MLmodel"))),
    Case("key not a model location", "register", _event(_key_detail("elsewhere/MARKER/MLmodel"))),
    Case("event for another bucket", "register", _event(_valid_but_from("someone-elses-bucket"))),
    Case("event size not a number", "register", _event(_key_detail("models/MARKER/1/MLmodel", size="big"))),
    Case(
        "event key not a string",
        "register",
        _event(lambda s, m: {"bucket": {"name": s.bucket}, "object": {"key": 7, "id": m}}),
    ),
    Case("event without object", "register", _event(lambda s, m: {"bucket": {"name": s.bucket}, "marker": m})),
    Case(
        "event without detail",
        "register",
        _raw('{"detail-type": "Object Created", "source": "aws.s3", "id": "MARKER"}'),
    ),
    Case(
        "event detail null",
        "register",
        _raw('{"detail-type": "Object Created", "source": "aws.s3", "id": "MARKER", "detail": null}'),
    ),
    Case("event a JSON list", "register", _raw('["MARKER"]')),
    Case("event not JSON", "register", _raw("MARKER is not an event")),
    Case("event truncated", "register", _raw('{"version": "0", "id": "MARKER", "detail-type": "Object Crea')),
    Case("event oversized (200 kB)", "register", _event(_key_detail("models/MARKER/1/MLmodel", padding="p" * 200_000))),
    Case("event for a deleted object", "register", _event(_key_detail("models/MARKER/1/MLmodel"), "Object Deleted")),
    Case(
        "event size lies (50 MB)",
        "register",
        _put_bus({"object": {"key": "models/MARKER/1/MLmodel", "size": 52_428_800}}),
    ),
    # Forged project events on the validate and aliases queues.
    Case(
        "validation requested, version missing",
        "validate",
        _project(
            "Validation Requested", {"model_name": "MARKER", "requested_by": "x", "correlation_id": "c"}, "validate"
        ),
    ),
    Case(
        "validation requested, wrong types",
        "validate",
        _project(
            "Validation Requested",
            {"model_name": ["MARKER"], "version": {}, "requested_by": 1, "correlation_id": "c"},
            "validate",
        ),
    ),
    Case(
        "promotion of an unknown model",
        "aliases",
        _project(
            "Promotion Requested",
            {"model_name": "MARKER", "version": "1", "alias": "champion", "approver": "x", "correlation_id": "c"},
            "aliases",
        ),
    ),
    Case(
        "promotion to a bad alias",
        "aliases",
        _project(
            "Promotion Requested",
            {"model_name": "MARKER", "version": "1", "alias": "../champion", "approver": "x", "correlation_id": "c"},
            "aliases",
        ),
    ),
    Case(
        "forged passed verdict",
        "aliases",
        _project(
            "Model Version Validated",
            {
                "model_name": "MARKER",
                "version": "1",
                "status": "passed",
                "reasons": [],
                "checks": [],
                "policy": "default.yaml",
                "source_uri": "s3://x/y",
                "correlation_id": "c",
            },
            "aliases",
        ),
    ),
    Case(
        "rollback, wrong types",
        "aliases",
        _project(
            "Rollback Requested",
            {"model_name": "MARKER", "alias": 5, "requested_by": None, "correlation_id": "c"},
            "aliases",
        ),
    ),
]


def evidence(sandbox: Sandbox, case: Case, marker: str, letters: dict[str, list], log_lines: list[dict]) -> str | None:
    """The logged or dead-lettered reason for the case, or None when there is none."""
    for letter in letters[case.route]:
        if marker in letter.body and letter.reason:
            return f"dead-lettered {letter.reason}"
    for line in log_lines:  # a skip or a warning says why in its message, a refusal in its reason
        said_why = (
            line.get("reason") or line.get("level") == "WARNING" or str(line.get("message")).startswith("skipped")
        )
        if said_why and marker in json.dumps(line):
            return f"{line.get('message')}: {line.get('reason') or line.get('detail_type') or ''}".rstrip(": ")
    return None


def hostile() -> Result:
    result = Result("hostile", f"{len(CASES)} hostile inputs through the real pipeline")
    with fresh_sandbox() as sandbox:
        # A model with a champion, so that a wrong move would show.
        upload_model(sandbox, "bystander", "v1", 0.9)
        sandbox.wait_until_quiet(timeout=120)
        before = sandbox.registry_state()
        started = time.monotonic()
        markers = {case.name: f"hostile{index:02d}" for index, case in enumerate(CASES)}
        for case in CASES:
            case.send(sandbox, markers[case.name])
        sandbox.wait_until_quiet(timeout=300, stable_for=1.0)
        result.seconds = round(time.monotonic() - started, 1)
        sandbox.check_running()
        letters = {name: sandbox.dlq_messages(name) for name in sandbox.wiring}
        log_lines = sandbox.worker_log_lines()
        after = sandbox.registry_state()
        expected_models = {markers[c.name] for c in CASES if c.expect_version}
        new_models = {m["name"] for m in after} - {m["name"] for m in before}
        wrong_registrations = sorted(new_models - expected_models)
        passed_hostile = [
            m["name"]
            for m in after
            if m["name"] in expected_models
            for v in m["versions"]
            if v["tags"].get("validation.status") != "failed"
        ]
        moved = [m["name"] for m in after if m["name"] != "bystander" and m["aliases"]]
        bystander_same = [m for m in before if m["name"] == "bystander"][0]["aliases"] == [
            m for m in after if m["name"] == "bystander"
        ][0]["aliases"]
        outcomes = {}
        for case in CASES:
            outcome = evidence(sandbox, case, markers[case.name], letters, log_lines)
            if case.expect_version:
                versions = [m for m in after if m["name"] == markers[case.name]]
                status = versions[0]["versions"][0]["tags"].get("validation.status") if versions else None
                reasons = verdict_record(versions[0]["versions"][0]["tags"]).get("reasons", "") if versions else ""
                outcome = f"validation {status}: {reasons[:80]}" if status == "failed" else outcome
            outcomes[case.name] = outcome
        refused = sum(1 for outcome in outcomes.values() if outcome)
        result.observed = {
            "cases": len(CASES),
            "refused_with_reason": refused,
            "without_evidence": sorted(name for name, outcome in outcomes.items() if not outcome),
            "wrong_registrations": wrong_registrations,
            "hostile_versions_not_failed": passed_hostile,
            "alias_moves_on_hostile_models": moved,
            "bystander_aliases_unchanged": bystander_same,
            # check_running() above raises if a server died; a route worker that died would have been replaced
            "workers_alive": not sandbox.worker_replacements,
            "worker_replacements": [f"{r.worker} {r.ended}" for r in sandbox.worker_replacements],
            "outcomes": outcomes,
        }
        result.ok = (
            refused == len(CASES)
            and not wrong_registrations
            and not passed_hostile
            and not moved
            and bystander_same
            and not sandbox.worker_replacements
        )
    return result
