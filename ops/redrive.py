"""`python -m ops redrive ROUTE`: move a route's dead letters back onto its queue, once their cause is fixed.

    python -m ops --stack RegistryAutopilot redrive register --dry-run      # list them, with their reasons
    python -m ops --stack RegistryAutopilot redrive register                # move them all back
    python -m ops --stack RegistryAutopilot redrive validate --reason registry_unavailable

The route's queue and dead-letter queue come from the stack's outputs (`<Route>QueueUrl`, `<Route>DeadLetterQueueUrl`)
or from the sandbox's description. Each message is sent to the queue, then deleted from the dead-letter queue: at least
once (a failure in between leaves a copy in both, which the functions' idempotency absorbs). The attributes the
function added when it dead-lettered a message (`reason`, `error`, `deferrals`) stay behind: a redriven message starts
afresh. `--reason` moves only the messages with that reason; `none` selects those SQS moved after maxReceiveCount,
which carry no reason. Messages not moved are made visible again at the end.

On AWS, `aws sqs start-message-move-task --source-arn <DLQ ARN> --destination-arn <queue ARN>` moves them all too; this
command also works on the sandbox (its emulator has no move tasks), shows each message's reason, and can filter by it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.models.dead_letters import DEAD_LETTER_ATTRIBUTES, DeadLetter
from functions.project import FIFO_SUFFIX
from ops.target import Target, TargetError

VISIBILITY_SECONDS = 120
"""How long a received dead letter stays hidden while this command decides about it (reset at the end)."""
NO_REASON = "none"
DEFAULT_LIMIT = 1000


@dataclass(frozen=True)
class RouteQueues:
    route: str
    queue_url: str
    dead_letter_queue_url: str

    @property
    def fifo(self) -> bool:
        return self.queue_url.endswith(FIFO_SUFFIX)


def selected_by(letter: DeadLetter, reason: str | None) -> bool:
    return reason is None or (letter.reason or NO_REASON) == reason


def summary(letter: DeadLetter) -> str:
    """What the message is about, from its body (an EventBridge event), printable whatever the body holds."""
    if letter.event is None:
        return _printable(f"not an event: {letter.body[:60]!r}")[:200]
    detail = letter.detail
    about = letter.key
    if about is None and detail.get("model_name"):
        about = f"{detail['model_name']} v{detail.get('version', '?')}"
    return _printable(f"{letter.event.get('detail-type', '?')}: {about or '?'}")[:200]


@dataclass
class Outcome:
    moved: int = 0
    left: int = 0
    failed: int = 0


def add_parser(commands: Any) -> None:
    """Register `redrive` on `python -m ops`'s subcommands."""
    redrive = commands.add_parser(
        "redrive", help="move a route's dead letters back onto its queue (after fixing their cause)"
    )
    redrive.add_argument("route", help="the route whose dead-letter queue to empty: register, validate, ...")
    redrive.add_argument("--dry-run", action="store_true", help="list the dead letters and their reasons; move none")
    redrive.add_argument("--reason", help=f"move only dead letters with this reason ('{NO_REASON}': retries exhausted)")
    redrive.add_argument(
        "--max", type=int, default=DEFAULT_LIMIT, help=f"look at most at this many (default {DEFAULT_LIMIT})"
    )
    redrive.set_defaults(run=run_redrive)


def run_redrive(args: argparse.Namespace, target: Target) -> int:
    if args.max < 1:
        raise TargetError("--max must be at least 1")
    queues = route_queues(args.route, target, sandbox=args.sandbox, stack=args.stack)
    try:
        outcome = redrive(
            target.client("sqs"),
            queues,
            dry_run=args.dry_run,
            reason=args.reason,
            limit=args.max,
            report=print,
        )
    except (ClientError, BotoCoreError) as error:
        raise TargetError(f"SQS refused: {error}") from None
    verb = "would move" if args.dry_run else "moved"
    print(
        f"{verb} {outcome.moved}, left {outcome.left}, could not move {outcome.failed} "
        f"({queues.route} dead-letter queue -> {queues.route} queue)"
    )
    return 1 if outcome.failed else 0


def route_queues(route: str, target: Target, *, sandbox: str | None, stack: str | None) -> RouteQueues:
    """The route's queue URLs, from the sandbox's description or the stack's outputs."""
    from functions.routing import ROUTES

    known = [r.name for r in ROUTES]
    if route not in known:
        raise TargetError(f"no route named {route!r}; known: {', '.join(known)}")
    if sandbox:
        text = Path(sandbox).read_text() if Path(sandbox).is_file() else sandbox
        try:
            urls = json.loads(text)["queues"][route]
            return RouteQueues(route, urls["queue_url"], urls["dead_letter_queue_url"])
        except (ValueError, KeyError, TypeError) as error:
            raise TargetError(f"the sandbox description has no queues for {route!r}: {error}") from None
    try:
        described = target.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except (ClientError, BotoCoreError) as error:
        raise TargetError(f"stack {stack!r}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    prefix = output_prefix(route)
    try:
        return RouteQueues(route, outputs[f"{prefix}QueueUrl"], outputs[f"{prefix}DeadLetterQueueUrl"])
    except KeyError as missing:
        raise TargetError(f"stack {stack!r} has no output {missing}: is the {route} route deployed?") from None


def output_prefix(route: str) -> str:
    """`register` -> `Register` (the stack names its outputs so; see stacks.constants.pascal_case)."""
    return "".join(part[:1].upper() + part[1:] for part in route.replace("-", "_").split("_") if part)


def redrive(
    sqs: Any,
    queues: RouteQueues,
    *,
    dry_run: bool = False,
    reason: str | None = None,
    limit: int = DEFAULT_LIMIT,
    report: Callable[[str], None] = print,
) -> Outcome:
    """Move (or list) up to `limit` dead letters of `queues.route`; returns what happened to them."""
    outcome = Outcome()
    hidden: list[str] = []  # receipt handles of messages looked at but not moved: made visible again at the end
    try:
        for letter in received(sqs, queues, limit=limit):
            line = f"{letter.message_id}  reason={letter.reason or NO_REASON}  {summary(letter)}"
            if dry_run or not selected_by(letter, reason):
                hidden.append(letter.receipt_handle)
                if dry_run and selected_by(letter, reason):
                    outcome.moved += 1
                    report(f"would move {line}")
                else:
                    outcome.left += 1
                continue
            problem = _move(sqs, queues, letter)
            if problem:
                hidden.append(letter.receipt_handle)
                outcome.failed += 1
                report(f"could not move {line}: {problem}")
            else:
                outcome.moved += 1
                report(f"moved {line}")
    finally:
        _make_visible(sqs, queues.dead_letter_queue_url, hidden)
    return outcome


def received(sqs: Any, queues: RouteQueues, *, limit: int = DEFAULT_LIMIT) -> Iterator[DeadLetter]:
    """Up to `limit` dead letters of `queues.route`, each hidden for `VISIBILITY_SECONDS` once received (the caller
    moves it, or makes it visible again)."""
    seen = 0
    while seen < limit:
        batch = sqs.receive_message(
            QueueUrl=queues.dead_letter_queue_url,
            MaxNumberOfMessages=min(10, limit - seen),
            WaitTimeSeconds=1,
            VisibilityTimeout=VISIBILITY_SECONDS,
            MessageAttributeNames=list(DEAD_LETTER_ATTRIBUTES),
            MessageSystemAttributeNames=["MessageGroupId"],
        ).get("Messages", [])
        if not batch:
            return
        for message in batch:
            seen += 1
            yield DeadLetter.from_message(message, route=queues.route)


def peek(sqs: Any, queues: RouteQueues, *, limit: int = DEFAULT_LIMIT) -> list[DeadLetter]:
    """Up to `limit` dead letters of `queues.route`, left in the dead-letter queue (visible again at the end)."""
    letters: list[DeadLetter] = []
    try:
        letters.extend(received(sqs, queues, limit=limit))
    finally:
        _make_visible(sqs, queues.dead_letter_queue_url, [letter.receipt_handle for letter in letters])
    return letters


def _move(sqs: Any, queues: RouteQueues, letter: DeadLetter) -> str | None:
    """Send the dead letter to the queue, then delete it from the dead-letter queue; a reason when it cannot."""
    send: dict[str, Any] = {"QueueUrl": queues.queue_url, "MessageBody": letter.body}
    if queues.fifo:
        if not letter.message_group_id:
            return "the queue is FIFO and the message has no message group"
        # Its own group keeps the route's order; the id makes a repeated redrive within 5 minutes a no-op.
        send |= {
            "MessageGroupId": letter.message_group_id,
            "MessageDeduplicationId": f"redrive-{letter.message_id}"[:128],
        }
    sqs.send_message(**send)
    sqs.delete_message(QueueUrl=queues.dead_letter_queue_url, ReceiptHandle=letter.receipt_handle)
    return None


def _make_visible(sqs: Any, queue_url: str, receipt_handles: list[str]) -> None:
    for start in range(0, len(receipt_handles), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, handle in enumerate(receipt_handles[start : start + 10])
        ]
        try:
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as error:  # they come back by themselves after the visibility timeout
            print(f"ops: could not make {len(entries)} dead letters visible again ({error})", file=sys.stderr)


def _printable(text: str) -> str:
    return "".join(character if character.isprintable() else "?" for character in text)
