"""`python -m ops backfill`: register the models already in the bucket, through the register route.

    python -m ops --stack RegistryAutopilot backfill --dry-run            # what would be registered, and skipped
    python -m ops --stack RegistryAutopilot backfill                      # validated; no alias moves
    python -m ops --stack RegistryAutopilot backfill --promote --since 2025-01-01 --prefix models/churn/

It lists the model locations of the bucket (`models/` and the MLflow artifact root), maps every `MLmodel` key with
the register route's own layout code (`functions.domain.layouts`), reads each one's current version (HeadObject),
and leaves out those the registry already holds, by the origin identity the register route records
(`functions.domain.tags.IDENTITY_TAG`). Each of the others is put on the default bus as the `Object Created` event S3
would have sent (`replay.send.object_created`, under `functions.routing.REPLAY_SOURCE`, as `python -m replay send`
re-sends), so dedupe, completeness, validation and the archive apply as to a live upload.

Alias moves: the event carries `backfill: hold_aliases` (the default) or `backfill: promote` (`--promote`); the
register route records it as the version's `origin.backfill` tag and the aliases route moves no alias for a
held version's verdict (`ops promote` still can). Events go out oldest upload first (LastModified), so with
`--promote` the newest passing version ends where a live pipeline would have left it.

Resumable: run again after any interruption, and it sends only what the registry does not hold yet; an event sent
twice is a duplicate delivery to the register route (its idempotency record and its registry lookup by source).

Dead letters: the summary counts the records this run sent that are in the register dead-letter queue when it ends
(by the EventBridge event id PutEvents returned, which the dead letter's body keeps), with their reasons, and how many
records the register queue still holds then; those may dead-letter later (`--settle SECONDS` waits for the queue to
empty first; `python -m ops redrive register --dry-run` lists them afterwards). A target without the register
dead-letter queue, or a queue that cannot be read, is said to leave the count unknown.

MLflow workspaces: a key under `<root>/workspaces/<workspace>/` is registered in that workspace, so the identities
already registered are read in the client's workspace and in each workspace the candidates are under.

Very large buckets: `--inventory s3://<destination>/<prefix>/<bucket>/<config-id>/<timestamp>/manifest.json` takes the
listing from an S3 Inventory report (CSV) instead of ListObjectsV2 (`ops.target.inventory_objects`, parsed by
`ops.inventory`); the plan, the HeadObject check of every candidate and the sending are the same.

The planning below is pure (listing → plan); the S3 reads are `ops.target.list_objects` (or `inventory_objects`) and
`head_objects`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.domain.errors import PipelineError, Rejected
from functions.domain.layouts import (
    LoggedModelArtifact,
    PlainUpload,
    check_key,
    check_model_name,
    classify,
    workspace_of,
)
from functions.domain.ports import ModelRegistry
from functions.domain.registration import UploadedObject
from functions.domain.tags import BACKFILL_HOLD_ALIASES, BACKFILL_PROMOTE
from functions.models.dead_letters import DeadLetter
from functions.routing import MLMODEL_FILE, PLAIN_UPLOAD_PREFIX, REGISTER
from ops.redrive import NO_REASON, RouteQueues, peek
from ops.target import (
    HeadedObject,
    ListedObject,
    Target,
    TargetError,
    head_objects,
    inventory_objects,
    list_objects,
)
from replay.send import PUT_EVENTS_BATCH, Sending, object_created, prepare, put_batch

EXIT_ERROR = 2

DEFAULT_RATE = 5.0
"""Events per second. The register route runs at most `registerMaxConcurrency` (default 5) functions at once, each
spending ~130 ms and 4 to 6 MLflow requests on a registration (docs/performance.md); 5 events a second keep the
backfill to about one function's worth of that, so live uploads keep the rest and MLflow sees ~30 requests a second
from it at most. Raise it with the MLflow server's headroom in mind."""

DEAD_LETTERS_READ = 1000
"""Dead letters read to count this run's (past that, the count is a floor and says so)."""

PROGRESS_EVERY_SECONDS = 60.0
"""When stderr is not a terminal, one progress line a minute."""

_PROBE_MODEL = "registry-autopilot-backfill-probe"
"""A model name read (not written) before each batch: MLflow answers None while it is up."""


class BackfillError(ValueError):
    """Bad input to the backfill (a prefix outside the model locations, a bad date); the message says which."""


# --- planning (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """An `MLmodel` in a model location, in the window, that the register route would take."""

    key: str
    layout: str  # plain, logged_model, run_artifact
    model: str
    """The registered model name for plain uploads; for MLflow's layouts the register route resolves it."""
    last_modified: datetime
    workspace: str | None = None
    """The MLflow workspace of the key (`<root>/workspaces/<workspace>/`), None outside any."""


@dataclass(frozen=True)
class Skip:
    key: str
    reason: str
    detail: str = ""

    def line(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.key}: {self.reason}" + (f": {self.detail}" if self.detail else "")


@dataclass
class Selection:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    """Left out on purpose: not a model location, outside --since/--until."""
    refused: list[Skip] = field(default_factory=list)
    """Keys the register route would refuse (dead-letter): reported, never sent."""
    listed: int = 0


@dataclass(frozen=True)
class Send:
    candidate: Candidate
    head: HeadedObject
    identity: str


@dataclass
class Plan:
    to_send: list[Send] = field(default_factory=list)
    already_registered: list[Send] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    refused: list[Skip] = field(default_factory=list)
    """Refused keys, and objects gone since the listing."""
    listed: int = 0
    registry_lists: bool = True
    """False when the registry cannot list identities (Unity Catalog): everything is sent, the route dedupes."""


def model_prefixes(artifact_root_prefix: str) -> tuple[str, ...]:
    return (f"{PLAIN_UPLOAD_PREFIX}/", f"{artifact_root_prefix.strip('/')}/")


def listing_prefixes(prefix: str | None, artifact_root_prefix: str) -> list[str]:
    """What to list: the model locations, or `prefix` when it lies inside one (`BackfillError` if not)."""
    locations = model_prefixes(artifact_root_prefix)
    if not prefix:
        return list(locations)
    if any(prefix.startswith(location) for location in locations):
        return [prefix]
    raise BackfillError(
        f"--prefix {prefix!r} is outside the model locations ({', '.join(locations)}): nothing there is registered"
    )


def select(
    listed: Iterable[ListedObject],
    *,
    artifact_root_prefix: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Selection:
    """The listing's `MLmodel` keys, mapped as the register route maps them; oldest upload first."""
    selection = Selection()
    for obj in listed:
        selection.listed += 1
        if not obj.key.endswith(f"/{MLMODEL_FILE}"):
            continue
        try:
            check_key(obj.key)
            location = classify(obj.key, artifact_root_prefix=artifact_root_prefix)
            if isinstance(location, PlainUpload):
                check_model_name(location.model_name)
        except Rejected as refusal:
            selection.refused.append(Skip(obj.key, refusal.reason, refusal.message))
            continue
        if location is None:
            selection.skipped.append(Skip(obj.key, "not_a_model_location"))
        elif since is not None and obj.last_modified < since:
            selection.skipped.append(Skip(obj.key, "before_since"))
        elif until is not None and obj.last_modified >= until:
            selection.skipped.append(Skip(obj.key, "after_until"))
        elif isinstance(location, PlainUpload):
            selection.candidates.append(Candidate(obj.key, "plain", location.model_name, obj.last_modified))
        else:
            layout = "logged_model" if isinstance(location, LoggedModelArtifact) else "run_artifact"
            model = f"(experiment {location.experiment_id or '?'})"
            selection.candidates.append(
                Candidate(obj.key, layout, model, obj.last_modified, workspace=workspace_of(location))
            )
    selection.candidates.sort(key=lambda candidate: (candidate.last_modified, candidate.key))
    return selection


def registered_identities(registry: ModelRegistry, bucket: str, candidates: Iterable[Candidate]) -> set[str] | None:
    """The identities the registry holds for `bucket`: in the client's workspace, and in each MLflow workspace the
    candidates' keys are under (the register route registers each there); None when the registry cannot list them."""
    found = registry.registered_identities(bucket)
    for workspace in sorted({c.workspace for c in candidates if c.workspace}):
        try:
            with registry.in_workspace(workspace):
                there = registry.registered_identities(bucket)
        except Rejected:
            # Workspaces off, or no such workspace: its keys are sent, and the register route dead-letters them with
            # that reason (the summary counts them).
            continue
        found = None if found is None or there is None else found | there
    return found


def identity(bucket: str, head: HeadedObject) -> str:
    """The identity the register route records for this object version (`UploadedObject.identity`)."""
    return UploadedObject(bucket=bucket, key=head.key, etag=head.etag.strip('"'), version_id=head.version_id).identity


def plan(
    selection: Selection,
    heads: Mapping[str, HeadedObject | None],
    registered: set[str] | None,
    *,
    bucket: str,
) -> Plan:
    """What to send: the candidates still in the bucket whose identity the registry does not hold."""
    result = Plan(
        skipped=list(selection.skipped),
        refused=list(selection.refused),
        listed=selection.listed,
        registry_lists=registered is not None,
    )
    for candidate in selection.candidates:
        head = heads.get(candidate.key)
        if head is None:
            result.refused.append(Skip(candidate.key, "object_gone", "deleted since it was listed"))
            continue
        send = Send(candidate, head, identity(bucket, head))
        if registered is not None and send.identity in registered:
            result.already_registered.append(send)
        else:
            result.to_send.append(send)
    return result


def event_for(send: Send, *, bucket: str, project_bus: str, promote: bool) -> Sending:
    """The PutEvents entry for one object: the event S3 would have sent, through `replay send`'s preparation."""
    head = send.head
    recorded = object_created(
        bucket,
        head.key,
        etag=head.etag,
        size=head.size,
        version_id=head.version_id,
        time=head.last_modified,
        backfill=BACKFILL_PROMOTE if promote else BACKFILL_HOLD_ALIASES,
    )
    return prepare(recorded, bucket=bucket, project_bus=project_bus)


def describe_plan(plan: Plan, *, bucket: str, dry_run: bool) -> list[str]:
    """The plan as lines: counts per model name and layout, then the skips with their reasons."""
    verb = "would send" if dry_run else "sending"
    lines = [f"backfill s3://{bucket}: {plan.listed} objects listed; {verb} {len(plan.to_send)} MLmodel(s)"]
    per_model = Counter((send.candidate.model, send.candidate.layout) for send in plan.to_send)
    for (model, layout), count in sorted(per_model.items()):
        lines.append(f"  {model:<40} {layout:<13} {count}")
    lines.append(f"already registered: {len(plan.already_registered)}")
    if not plan.registry_lists:
        lines.append("  (this registry cannot list them: every model is sent; the register route finds the others)")
    for reason, count in sorted(Counter(skip.reason for skip in plan.skipped).items()):
        lines.append(f"skipped ({reason}): {count}")
    return lines


# --- sending --------------------------------------------------------------------------------------


class Progress:
    """A line with rate and ETA: rewritten in place on a terminal, one a minute otherwise."""

    def __init__(self, total: int, stream: IO[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.stream, self.clock = total, stream, clock
        self.tty = stream.isatty()
        self.started = self.last = clock()

    def update(self, done: int, *, final: bool = False) -> None:
        now = self.clock()
        if not self.tty and not final and now - self.last < PROGRESS_EVERY_SECONDS:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else 0.0
        line = f"backfill: {done}/{self.total} sent, {rate:.1f}/s, ETA {_duration(eta)}"
        if self.tty:
            self.stream.write(f"\r\x1b[K{line}" + ("\n" if final else ""))
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@dataclass
class Outcome:
    sent: int = 0
    errors: list[str] = field(default_factory=list)
    """Entries PutEvents refused, and why the run stopped (if it did)."""
    stopped: str | None = None


def send_all(
    sendings: Sequence[Sending],
    *,
    put: Callable[[Sequence[Sending]], None],
    probe: Callable[[], None],
    rate: float,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Put the events in order, at most `rate` a second, in batches of up to 10; before each batch `probe()`
    checks MLflow answers (a `PipelineError` stops the run: what was not sent is sent by the next run)."""
    outcome = Outcome()
    batch_size = max(1, min(PUT_EVENTS_BATCH, int(rate)))
    started = clock()
    for start in range(0, len(sendings), batch_size):
        try:
            probe()
        except PipelineError as error:
            outcome.stopped = (
                f"MLflow is not answering ({error.message}): stopped after {outcome.sent} of {len(sendings)} sent; "
                "run the same command again once it answers (nothing sent is lost, nothing is sent twice)"
            )
            break
        wait = started + start / rate - clock()
        if wait > 0:
            sleep(wait)
        batch = sendings[start : start + batch_size]
        put(batch)
        outcome.sent += sum(1 for sending in batch if sending.sent)
        outcome.errors += [f"{sending.label}: NOT sent: {sending.error}" for sending in batch if not sending.sent]
        if progress is not None:
            progress.update(start + len(batch))
    if progress is not None:
        progress.update(outcome.sent, final=True)
    return outcome


# --- what ended in the register dead-letter queue ---------------------------------------------------

QUEUE_DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
SETTLE_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class DeadLettered:
    """The register route's dead letters that are events this run sent, as read at the end of the run."""

    reasons: Counter[str]
    waiting: int
    """Messages still in the register queue (visible, in flight or delayed) when it was read."""
    read_all: bool = True
    """False when the dead-letter queue held more letters than were read (the count is then a floor)."""

    def line(self) -> str:
        count = sum(self.reasons.values())
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.reasons.items()))
        text = f"dead-lettered {'at least ' if not self.read_all else ''}{count}" + (f" ({reasons})" if reasons else "")
        if self.waiting:
            return (
                f"{text} so far, {self.waiting} record(s) still in the register queue (more may follow: "
                "`python -m ops redrive register --dry-run` lists the dead letters)"
            )
        return f"{text} (the register queue was empty when read)"


def dead_lettered(letters: Iterable[DeadLetter], sent_ids: set[str], *, waiting: int, read_all: bool) -> DeadLettered:
    """Which `letters` are events this run sent: a dead letter's body is the EventBridge event, whose `id` is the
    EventId PutEvents returned (kept through the route's re-enqueues and SQS's redrive), so only this run's count."""
    reasons = Counter(letter.reason or NO_REASON for letter in letters if (letter.event or {}).get("id") in sent_ids)
    return DeadLettered(reasons, waiting=waiting, read_all=read_all)


def read_dead_lettered(
    sqs: Any,
    queues: RouteQueues,
    sent_ids: set[str],
    *,
    settle_seconds: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DeadLettered:
    """Wait up to `settle_seconds` for the register queue to empty, then count this run's dead letters."""
    deadline = clock() + settle_seconds
    while (waiting := _depth(sqs, queues.queue_url)) and clock() < deadline:
        sleep(SETTLE_POLL_SECONDS)
    letters = peek(sqs, queues, limit=DEAD_LETTERS_READ)
    return dead_lettered(letters, sent_ids, waiting=waiting, read_all=len(letters) < DEAD_LETTERS_READ)


def _depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(QUEUE_DEPTH_ATTRIBUTES))
    return sum(int(attributes.get("Attributes", {}).get(name, 0)) for name in QUEUE_DEPTH_ATTRIBUTES)


def _dead_letter_line(target: Target, sent_ids: set[str], settle_seconds: float) -> str:
    """The summary's dead-letter part; says why when the register dead-letter queue cannot be read."""
    urls = (target.queues or {}).get(REGISTER.name) or {}
    if not urls.get("queue_url") or not urls.get("dead_letter_queue_url"):
        return "dead-lettered unknown (the target names no register dead-letter queue)"
    queues = RouteQueues(REGISTER.name, urls["queue_url"], urls["dead_letter_queue_url"])
    try:
        return read_dead_lettered(target.client("sqs"), queues, sent_ids, settle_seconds=settle_seconds).line()
    except (ClientError, BotoCoreError) as error:
        return f"dead-lettered unknown (cannot read the register dead-letter queue: {str(error)[:200]})"


# --- the command ----------------------------------------------------------------------------------


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("backfill", help="register the models already in the bucket (via the register route)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be registered and skipped; send none")
    parser.add_argument("--prefix", help="only keys under this prefix (inside models/ or the MLflow artifact root)")
    parser.add_argument("--since", type=_when, help="only objects last modified at or after this (ISO 8601)")
    parser.add_argument("--until", type=_when, help="only objects last modified before this (ISO 8601)")
    parser.add_argument(
        "--rate", type=_rate, default=DEFAULT_RATE, help=f"events per second (default {DEFAULT_RATE:g})"
    )
    parser.add_argument(
        "--promote", action="store_true", help="let the backfilled versions' verdicts move aliases (oldest first)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before counting what was dead-lettered, wait up to this long for the register queue to empty (default 0)",
    )
    parser.add_argument(
        "--inventory",
        metavar="S3_URI",
        help="list from this S3 Inventory report (s3://<bucket>/<path>/manifest.json, CSV) instead of ListObjectsV2",
    )
    parser.set_defaults(run=run_backfill)


def _when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not 0 < rate <= 1000:
        raise argparse.ArgumentTypeError(f"--rate wants events per second, above 0 and at most 1000: {text!r}")
    return rate


def run_backfill(args: argparse.Namespace, target: Target) -> int:
    from functions.adapters.registry_factory import open_registry

    bucket = target.bucket
    if not bucket:
        raise TargetError("the target names no artifact bucket (its BucketName output, or the sandbox's bucket)")
    if not target.tracking_uri:
        raise TargetError("set MLFLOW_TRACKING_URI to the stack's MLflow server to read the registry")
    try:
        prefixes = listing_prefixes(args.prefix, target.artifact_root_prefix)
    except BackfillError as error:
        raise TargetError(str(error)) from None
    if getattr(args, "inventory", None):
        listed = list(inventory_objects(target, args.inventory, bucket, prefixes))
    else:
        listed = [obj for prefix in prefixes for obj in list_objects(target, bucket, prefix)]
    selection = select(listed, artifact_root_prefix=target.artifact_root_prefix, since=args.since, until=args.until)
    try:
        registry = open_registry(target.tracking_uri, os.environ.get("MLFLOW_REGISTRY_URI", ""))
        registered = registered_identities(registry, bucket, selection.candidates)
    except PipelineError as error:
        raise TargetError(
            f"cannot read the registry at {target.tracking_uri} ({error.message}): nothing was sent; run again once "
            "it answers"
        ) from None
    heads = head_objects(target, bucket, (candidate.key for candidate in selection.candidates))
    result = plan(selection, heads, registered, bucket=bucket)
    for line in describe_plan(result, bucket=bucket, dry_run=args.dry_run):
        print(line)
    for refusal in result.refused:
        print(f"ops: refused: {refusal.line(bucket)}", file=sys.stderr)
    if args.dry_run:
        return EXIT_ERROR if result.refused else 0

    sendings = [
        event_for(send, bucket=bucket, project_bus=target.event_bus, promote=args.promote) for send in result.to_send
    ]
    events = target.client("events")
    outcome = send_all(
        sendings,
        put=lambda batch: put_batch(events, batch, doing=f"put events on the default bus for s3://{bucket}"),
        probe=lambda: registry.get_model(_PROBE_MODEL) and None,
        rate=args.rate,
        progress=Progress(len(sendings), sys.stderr) if sendings else None,
    )
    for error in outcome.errors:
        print(f"ops: error: {error}", file=sys.stderr)
    sent_ids = {sending.event_id for sending in sendings if sending.event_id}
    skipped = ", ".join(
        f"{reason} {count}" for reason, count in sorted(Counter(s.reason for s in result.skipped).items())
    )
    refused = ", ".join(
        f"{reason} {count}" for reason, count in sorted(Counter(s.reason for s in result.refused).items())
    )
    print(
        f"backfill: sent {outcome.sent}, already registered {len(result.already_registered)}, "
        f"skipped {len(result.skipped)}"
        + (f" ({skipped})" if skipped else "")
        + f", refused {len(result.refused)}"
        + (f" ({refused})" if refused else "")
        + (", aliases may move (--promote)" if args.promote else ", no alias moves (without --promote)")
        + (f", {_dead_letter_line(target, sent_ids, args.settle)}" if sent_ids else ", dead-lettered 0")
    )
    if outcome.stopped:
        print(f"ops: error: {outcome.stopped}", file=sys.stderr)
    return EXIT_ERROR if outcome.stopped or outcome.errors or result.refused else 0
