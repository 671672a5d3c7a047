"""What happened to each injected event, told from the sandbox's evidence, and printed deterministically.

Evidence: the events the pipeline emitted (the observer queue), the dead-letter queues, and the JSON log
lines of the workers (which message carried which event) and of the handlers (Powertools lines carry the
SQS `message_id`, and the register handler a `correlation_id`). Pure functions: unit-tested.

Determinism: values that differ between two runs of the same inputs (S3 version ids, upload times,
correlation ids derived from them, event ids) are left out of the output, and everything is sorted.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from functions.domain.tags import HISTORY_TAG_PREFIX, TAG_VERDICT
from functions.models.events import DetailType
from sandbox.worker import INVOKING, WORKER_LOGGER

VOLATILE_NAMES = frozenset(
    {"correlation_id", "version_id", "uploaded_at", "identity", "time", "timestamp", "validated_at", "at", "verdict"}
)
"""Field and tag names (last dotted segment) whose values change from run to run."""


@dataclass
class Injection:
    """One recorded event as it was put on a sandbox bus."""

    label: str
    source: str
    detail_type: str
    bus: str
    event_id: str
    key: str | None = None
    bucket: str | None = None
    correlation_id: str | None = None
    """A project event's own correlation id (events it causes carry it on)."""
    message_ids: set[str] = field(default_factory=set)


@dataclass
class Outcome:
    injection: Injection
    routes: list[str] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)
    emitted: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)

    @property
    def registered(self) -> list[dict]:
        found = [
            {
                "model": detail.get("model_name"),
                "version": detail.get("version"),
                "source": detail.get("source_uri"),
                "already_registered": bool(detail.get("already_registered")),
            }
            for event in self.emitted
            if event.get("detail-type") == DetailType.MODEL_VERSION_REGISTERED.value
            for detail in [event.get("detail") or {}]
        ]
        return sorted(found, key=lambda item: (str(item["model"]), _version_order(item["version"])))

    @property
    def skips(self) -> list[dict]:
        return [note for note in self.notes if note["message"].lower().startswith("skipped")]

    def as_dict(self) -> dict:
        injection = self.injection
        return {
            "event": injection.label,
            "source": injection.source,
            "detail_type": injection.detail_type,
            "bus": injection.bus,
            "key": injection.key,
            "routes": self.routes,
            "registered": self.registered,
            "emitted": sorted((summarize_event(event) for event in self.emitted), key=_sort_key),
            "dead_letters": sorted(self.dead_letters, key=_sort_key),
            "skips": [{k: v for k, v in note.items() if k != "level"} for note in self.skips],
            "notes": self.notes,
        }


def stable(value: Any) -> Any:
    """`value` without the fields whose values change from run to run (see `VOLATILE_NAMES`)."""
    if isinstance(value, Mapping):
        return {
            key: stable(_parsed_json(item) if _holds_json(str(key)) else item)
            for key, item in sorted(value.items())
            if str(key).rsplit(".", 1)[-1] not in VOLATILE_NAMES
        }
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


def _holds_json(key: str) -> bool:
    return key.startswith(HISTORY_TAG_PREFIX) or key == TAG_VERDICT


def _parsed_json(value: Any) -> Any:
    """An alias-history or verdict tag (JSON text) as data, so its times can be left out like any other."""
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def summarize_event(event: Mapping[str, Any]) -> dict:
    """An emitted event as `detail_type` plus its stable detail."""
    return {"detail_type": event.get("detail-type"), "detail": stable(event.get("detail") or {})}


def correlate(
    injections: Sequence[Injection],
    *,
    observed: Iterable[Mapping[str, Any]],
    dead_letters: Iterable[Any],
    log_lines: Iterable[Mapping[str, Any]],
) -> list[Outcome]:
    """Attribute every piece of evidence to the injected event it came from."""
    lines = list(log_lines)
    route_of_message: dict[str, str] = {}
    messages_of_event: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        if line.get("logger") == WORKER_LOGGER and line.get("message") == INVOKING:
            for record in line.get("records") or []:
                route_of_message[record["messageId"]] = str(line.get("route"))
                if record.get("eventId"):
                    messages_of_event[record["eventId"]].add(record["messageId"])

    outcomes = [Outcome(injection) for injection in injections]
    correlations: list[set[str]] = []
    for outcome in outcomes:
        injection = outcome.injection
        injection.message_ids = set(messages_of_event.get(injection.event_id, set()))
        outcome.routes = sorted({route_of_message[m] for m in injection.message_ids if m in route_of_message})
        handler_lines = [line for line in lines if line.get("message_id") in injection.message_ids]
        outcome.notes = _notes(handler_lines, route_of_message)
        seeds = {str(line["correlation_id"]) for line in handler_lines if line.get("correlation_id")}
        if injection.correlation_id:
            seeds.add(injection.correlation_id)
        correlations.append(seeds)

    injected_ids = {injection.event_id for injection in injections}
    for event in observed:
        if event.get("id") in injected_ids:
            continue  # a project event we injected ourselves
        # An event carrying the correlation id the handler logged for an injection is that injection's; only when
        # none does, one naming the same object is attributed to an injection that reached a route.
        matches = [index for index in range(len(outcomes)) if _correlated(event, correlations[index])] or [
            index for index, outcome in enumerate(outcomes) if outcome.routes and _same_object(event, outcome.injection)
        ]
        if not matches:
            continue
        detail_type = event.get("detail-type")
        chosen = next(
            (i for i in matches if all(e.get("detail-type") != detail_type for e in outcomes[i].emitted)), matches[0]
        )
        outcomes[chosen].emitted.append(dict(event))
        correlation = (event.get("detail") or {}).get("correlation_id")
        if correlation:
            correlations[chosen].add(str(correlation))

    by_event_id = {outcome.injection.event_id: outcome for outcome in outcomes}
    for letter in dead_letters:
        event = letter.event or {}
        outcome = by_event_id.get(str(event.get("id")))
        if outcome is not None:
            outcome.dead_letters.append(
                {
                    "route": letter.route,
                    "reason": letter.reason or "max_receive_count_exceeded",
                    "error": letter.error,
                }
            )
    return outcomes


def _correlated(event: Mapping[str, Any], correlations: set[str]) -> bool:
    detail = event.get("detail") or {}
    return bool(detail.get("correlation_id")) and str(detail["correlation_id"]) in correlations


def _same_object(event: Mapping[str, Any], injection: Injection) -> bool:
    artifact = (event.get("detail") or {}).get("artifact") or {}
    return bool(injection.key) and artifact.get("key") == injection.key and artifact.get("bucket") == injection.bucket


def _notes(lines: Sequence[Mapping[str, Any]], route_of_message: Mapping[str, str]) -> list[dict]:
    """The handler's INFO-and-above log lines about these messages, repeats folded into a count."""
    notes: list[dict] = []
    for line in lines:
        if str(line.get("level", "")).upper() not in ("INFO", "WARNING", "ERROR", "CRITICAL"):
            continue
        note = {
            "route": route_of_message.get(str(line.get("message_id")), str(line.get("worker", ""))),
            "level": str(line.get("level")).upper(),
            "message": str(line.get("message", "")),
        }
        if line.get("reason"):
            note["reason"] = str(line["reason"])
        if notes and {k: v for k, v in notes[-1].items() if k != "times"} == note:
            notes[-1]["times"] = notes[-1].get("times", 1) + 1
        else:
            notes.append(note)
    return notes


def _version_order(version: Any) -> tuple[int, str]:
    text = str(version)
    return (int(text), "") if text.isdigit() else (1 << 30, text)


def _sort_key(item: Any) -> str:
    return json.dumps(item, sort_keys=True, default=str)


# --- text ------------------------------------------------------------------------------------------------


def format_outcome(outcome: Outcome, *, position: int, total: int) -> str:
    injection = outcome.injection
    subject = f" {injection.key}" if injection.key else ""
    lines = [f"[{position}/{total}] {injection.label}: {injection.source} {injection.detail_type}{subject}"]
    rows: list[tuple[str, str]] = []
    rows.append(("delivered to", ", ".join(outcome.routes) if outcome.routes else "no route (no rule matched it)"))
    for item in outcome.registered:
        verb = "already had" if item["already_registered"] else "registered"
        rows.append((verb, f"{item['model']} v{item['version']} from {item['source']}"))
    for summary in sorted((summarize_event(event) for event in outcome.emitted), key=_sort_key):
        rows.append(("emitted", f"{summary['detail_type']}{_subject(summary['detail'])}"))
    for letter in sorted(outcome.dead_letters, key=_sort_key):
        error = f": {letter['error']}" if letter.get("error") else ""
        rows.append(("dead-lettered", f"by {letter['route']}, {letter['reason']}{error}"))
    for note in outcome.skips:
        rows.append(("skipped", f"by {note['route']}, {note.get('reason') or note['message']}"))
    for note in outcome.notes:
        if note in outcome.skips:
            continue
        times = f" (x{note['times']})" if note.get("times", 1) > 1 else ""
        reason = f" [{note['reason']}]" if note.get("reason") else ""
        rows.append(("handler", f"{note['route']}: {note['message']}{reason}{times}"))
    lines += [f"  {label:<14}{text}" for label, text in rows]
    return "\n".join(lines)


def _subject(detail: Mapping[str, Any]) -> str:
    parts = []
    if detail.get("model_name"):
        parts.append(str(detail["model_name"]))
    if detail.get("version"):
        parts.append(f"v{detail['version']}")
    for name in ("alias", "status"):
        if detail.get(name):
            parts.append(f"{name}={detail[name]}")
    return f" ({' '.join(parts)})" if parts else ""


def stable_registry(models: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The registry state without values that change from run to run."""
    return [stable(dict(model)) for model in models]


def format_registry(models: Sequence[Mapping[str, Any]], *, title: str = "Registry") -> str:
    if not models:
        return f"{title}: no registered models"
    lines = [f"{title}:"]
    for model in models:
        aliases = ", ".join(f"{alias}=v{version}" for alias, version in sorted((model.get("aliases") or {}).items()))
        lines.append(f"  {model['name']}" + (f"  aliases: {aliases}" if aliases else ""))
        for version in model.get("versions") or []:
            run = f"  run {version['run_id']}" if version.get("run_id") else ""
            lines.append(f"    v{version['version']}  {version['source']}{run}")
    return "\n".join(lines)
