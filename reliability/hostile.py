"""Hostile inputs fed through a real sandbox: each must be refused with a logged reason, and change nothing.

A case is an object written to the bucket (its S3 event comes as usual), an event put on a bus, or a raw
message put on a route's queue (what a broken or forged producer could deliver). Every case carries a
marker, so its evidence is found by it: a dead letter whose body holds it (with its `reason` attribute) or a
worker log line holding it with a `reason`. After all cases, the registry must hold no alias and no version
but the ones the metric cases expect (registered, then failed by validation).

A webhook case is an HTTP request to the sandbox's function URL for the webhook function (forged, expired,
replayed, oversized, the wrong content type or method, an event type it does not forward). Each must get its
status, the same reason in the answer and in the function's log line (found by the marker in the User-Agent),
and publish nothing.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.domain.tags import REGISTERED_BY, REGISTERED_BY_TAG, TAG_STATUS
from functions.domain.validation import verdict_record
from functions.domain.webhooks import sign
from functions.routing import WEBHOOK
from reliability.scenarios import MLMODEL, Result, fresh_sandbox, put_events, s3_event, upload_model
from sandbox import Sandbox

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
        fifo = {"MessageGroupId": "alias-moves"} if sandbox.wiring[route].fifo else {}
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


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class WebhookCase:
    name: str
    requests: Callable[[str, str], list[WebhookRequest]]
    """Builds the request(s) from the webhook secret and the case's marker; the last one's answer is judged."""
    status: int
    reason: str
    """The reason expected in the answer and in the webhook function's log line."""


def _created(marker: str, **data: Any) -> dict:
    """A `model_version.created` payload as MLflow sends it (`mlflow/webhooks/delivery.py`)."""
    fields = {"name": marker, "version": "1", "source": f"s3://team-bucket/{marker}", "run_id": None, "tags": {}}
    return {
        "entity": "model_version",
        "action": "created",
        "timestamp": "2026-11-26T12:00:00+00:00",
        "data": fields | data,
    }


def _delivery(
    payload: Callable[[str], dict | bytes],
    *,
    forged_key: str | None = None,
    age_seconds: int = 0,
    content_type: str | None = "application/json",
    delivery_id: str | None = None,
    signed: bool = True,
    method: str = "POST",
    times: int = 1,
) -> Callable[[str, str], list[WebhookRequest]]:
    """A delivery signed the way MLflow signs it (with `forged_key` instead of the real secret for a forgery)."""

    def build(real_secret: str, marker: str) -> list[WebhookRequest]:
        content = payload(marker)
        body = content if isinstance(content, bytes) else json.dumps(content).encode()
        identity = (delivery_id or f"{marker}-{uuid.uuid4().hex}").replace("MARKER", marker)
        stamp = str(int(time.time()) - age_seconds)
        headers = {"User-Agent": f"hostile-webhook/{marker}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if signed:
            headers |= {
                "X-MLflow-Delivery-Id": identity,
                "X-MLflow-Timestamp": stamp,
                "X-MLflow-Signature": sign(forged_key or real_secret, identity, stamp, body),
            }
        return [WebhookRequest(method, headers, b"" if method == "GET" else body)] * times

    return build


WEBHOOK_CASES: list[WebhookCase] = [
    WebhookCase("webhook forged signature", _delivery(_created, forged_key="not-the-real-key"), 401, "bad_signature"),
    WebhookCase("webhook unsigned", _delivery(_created, signed=False), 401, "missing_signature"),
    WebhookCase(
        "webhook malformed delivery id", _delivery(_created, delivery_id="../MARKER"), 401, "malformed_headers"
    ),
    WebhookCase("webhook expired (signed 10 min ago)", _delivery(_created, age_seconds=600), 403, "stale_timestamp"),
    WebhookCase("webhook from the future (10 min)", _delivery(_created, age_seconds=-600), 403, "future_timestamp"),
    # MLflow's own delivery for a version the pipeline registered: acknowledged once, then a replay of it refused.
    WebhookCase(
        "webhook replayed delivery id",
        _delivery(lambda m: _created(m, tags={REGISTERED_BY_TAG: REGISTERED_BY}), times=2),
        403,
        "replayed_delivery",
    ),
    WebhookCase(
        "webhook oversized body (100 kB)",
        _delivery(lambda m: _created(m, description="d" * 100_000)),
        413,
        "body_too_large",
    ),
    WebhookCase(
        "webhook wrong content type (text/plain)",
        _delivery(_created, content_type="text/plain"),
        415,
        "unsupported_content_type",
    ),
    WebhookCase(
        "webhook form content type",
        _delivery(_created, content_type="application/x-www-form-urlencoded"),
        415,
        "unsupported_content_type",
    ),
    WebhookCase("webhook GET", _delivery(_created, method="GET"), 405, "method_not_allowed"),
    WebhookCase("webhook body not JSON", _delivery(lambda m: f"{m} is not JSON".encode()), 400, "malformed_payload"),
    WebhookCase(
        "webhook payload missing fields",
        _delivery(lambda m: {"entity": "model_version", "action": "created", "data": {"name": m}}),
        400,
        "malformed_payload",
    ),
    # A genuine delivery of an event type that is not forwarded is acknowledged (200), not refused: MLflow retries
    # only 429 and 5xx, and its `test_webhook` counts anything under 400 as a success.
    WebhookCase(
        "webhook unknown event type (prompt.created)",
        _delivery(lambda m: {"entity": "prompt", "action": "created", "timestamp": "t", "data": {"name": m}}),
        200,
        "not_forwarded:prompt.created",
    ),
    WebhookCase(
        "webhook event type MLflow does not have",
        _delivery(lambda m: _created(m) | {"action": "archived"}),
        200,
        "not_forwarded:model_version.archived",
    ),
]


def send_webhook(url: str, request: WebhookRequest) -> tuple[int, dict]:
    """The endpoint's status and JSON answer (`{"status", "reason"}`)."""
    data = request.body if request.method != "GET" else None
    http = urllib.request.Request(url, data=data, method=request.method, headers=request.headers)
    try:
        with urllib.request.urlopen(http, timeout=30) as response:  # nosec B310: the sandbox's own http://127.0.0.1
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"{}")
        except ValueError:
            return error.code, {}


def webhook_log_lines(sandbox: Sandbox) -> list[dict]:
    """The webhook function's JSON log lines."""
    path = sandbox.log_path(WEBHOOK.name)
    lines = []
    for text in path.read_text(errors="replace").splitlines() if path.exists() else []:
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue
    return lines


def webhook_cases(sandbox: Sandbox, markers: dict[str, str]) -> dict[str, dict]:
    """Send every webhook case; returns, per case, the answer's status and reason."""
    secret = sandbox.webhook_secret()
    answers = {}
    for case in WEBHOOK_CASES:
        for request in case.requests(secret, markers[case.name]):
            status, body = send_webhook(sandbox.webhook_url, request)
        answers[case.name] = {"status": status, "reason": body.get("reason")}
    return answers


def webhook_outcome(case: WebhookCase, marker: str, answer: dict, lines: list[dict]) -> tuple[str, bool]:
    """The case's outcome as seen (answer and logged reason), and whether it is the expected one."""
    logged = [line.get("reason") for line in lines if marker in str(line.get("user_agent")) and line.get("reason")]
    reason = logged[-1] if logged else None
    outcome = f"HTTP {answer['status']} {answer['reason']}, logged {reason}"
    return outcome, (answer["status"], answer["reason"], reason) == (case.status, case.reason, case.reason)


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
    result = Result(
        "hostile", f"{len(CASES)} hostile inputs and {len(WEBHOOK_CASES)} hostile webhook deliveries, real pipeline"
    )
    with fresh_sandbox() as sandbox:
        # A model with a champion, so that a wrong move would show.
        upload_model(sandbox, "bystander", "v1", 0.9)
        sandbox.wait_until_quiet(timeout=120)
        before = sandbox.registry_state()
        started = time.monotonic()
        markers = {case.name: f"hostile{index:02d}" for index, case in enumerate(CASES)}
        markers |= {case.name: f"hostilewebhook{index:02d}" for index, case in enumerate(WEBHOOK_CASES)}
        for case in CASES:
            case.send(sandbox, markers[case.name])
        answers = webhook_cases(sandbox, markers)
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
            if v["tags"].get(TAG_STATUS) != "failed"
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
                status = versions[0]["versions"][0]["tags"].get(TAG_STATUS) if versions else None
                reasons = verdict_record(versions[0]["versions"][0]["tags"]).get("reasons", "") if versions else ""
                outcome = f"validation {status}: {reasons[:80]}" if status == "failed" else outcome
            outcomes[case.name] = outcome
        refused = sum(1 for outcome in outcomes.values() if outcome)
        webhook_lines = webhook_log_lines(sandbox)
        webhook_unexpected = []
        for case in WEBHOOK_CASES:
            outcomes[case.name], expected = webhook_outcome(case, markers[case.name], answers[case.name], webhook_lines)
            if not expected:
                webhook_unexpected.append(case.name)
        webhook_markers = {markers[case.name] for case in WEBHOOK_CASES}
        published = [
            event["detail-type"]
            for event in sandbox.observed_events()
            if any(marker in json.dumps(event) for marker in webhook_markers)
        ]
        result.observed = {
            "cases": len(CASES),
            "refused_with_reason": refused,
            "without_evidence": sorted(name for name, outcome in outcomes.items() if not outcome),
            "wrong_registrations": wrong_registrations,
            "hostile_versions_not_failed": passed_hostile,
            "alias_moves_on_hostile_models": moved,
            "bystander_aliases_unchanged": bystander_same,
            "webhook_cases": len(WEBHOOK_CASES),
            "webhook_as_expected": len(WEBHOOK_CASES) - len(webhook_unexpected),
            "webhook_unexpected": webhook_unexpected,
            "webhook_published": published,
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
            and not webhook_unexpected
            and not published
            and not sandbox.worker_replacements
        )
    return result
