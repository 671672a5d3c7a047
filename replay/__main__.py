"""`python -m replay`: replay recorded events in the local sandbox, or against a deployed stack.

    python -m replay sandbox [--json]          start the sandbox (the same as `python -m sandbox`)
    python -m replay local [--seed DIR] FILE   replay recorded events in a sandbox and say what happened
    python -m replay archive --stack NAME --from T [--to T] [--rule R]   replay an archive window on AWS
    python -m replay send --stack NAME FILE    put recorded events on a deployed stack's buses
    python -m replay record --stack NAME --since 1h OUT_DIR   download what the stack's recorder kept

Progress goes to stderr, results to stdout. Exit status: 0 done, 1 the operation did not succeed (a replay failed,
an event was refused, the pipeline did not settle), 2 a problem to fix first (arguments, credentials, stack name).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from functions.project import command_name
from replay import archive as archives
from replay import recorder, send
from replay.aws_stack import AwsProblem, DeployedStack, open_stack
from replay.local import attached, new_sandbox, replay_files
from replay.recordings import RecordedEvent, RecordingError, load_recording
from replay.report import format_outcome, format_registry, stable_registry
from replay.times import iso, parse_duration, parse_time
from sandbox import SandboxError
from sandbox import command as sandbox_command
from sandbox.context import ContextError, load_context

EXIT_NOT_QUIET = 1
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def progress(message: str) -> None:
    print(f"replay: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=command_name("replay"), description="Replay recorded events in the local sandbox, or on a deployed stack."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sandbox = commands.add_parser(
        "sandbox", help="start the sandbox and keep it running until Ctrl+C or SIGTERM (as python -m sandbox)"
    )
    sandbox_command.add_options(sandbox)
    sandbox.set_defaults(run=run_sandbox)

    local = commands.add_parser("local", help="inject recorded events into a sandbox and report what happened")
    local.add_argument("files", nargs="+", type=Path, help="EventBridge event JSON files (an event or a list)")
    local.add_argument("--seed", type=Path, help="upload this directory into the bucket first (keys = paths)")
    local.add_argument("--attach", help="use a running sandbox: its --json line, or a file holding it")
    local.add_argument("--json", action="store_true", help="one JSON object per event, then the registry state")
    local.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the pipeline to settle")
    sandbox_command.add_policies_option(local)
    local.add_argument(
        "--context", type=Path, help="run the functions with a deployment's settings: a cdk.json or a JSON object"
    )
    local.add_argument(
        "--keep-bucket",
        action="append",
        default=[],
        metavar="BUCKET",
        help="leave events naming BUCKET as they are (others are rewritten to the sandbox's bucket)",
    )
    local.set_defaults(run=run_local)

    archive = commands.add_parser("archive", help="replay a time window of a deployed stack's archive into its bus")
    _stack_options(archive)
    archive.add_argument(
        "--archive",
        choices=sorted(archives.ARCHIVES),
        default="artifacts",
        help="artifacts: the bucket's S3 events (re-runs registration; default); project: every project event",
    )
    archive.add_argument(
        "--from", dest="start", required=True, type=_moment, help="ISO 8601 time, or 2h for 2 hours ago"
    )
    archive.add_argument("--to", dest="end", default="now", type=_moment, help="ISO 8601 time, or 30m (default: now)")
    archive.add_argument(
        "--rule",
        action="append",
        default=[],
        help="replay only to this rule: a route name (register), or a rule name or ARN on the archive's bus",
    )
    archive.add_argument("--name", help="the replay's name (default: <stack>-<archive>-<UTC time>)")
    archive.add_argument("--poll-seconds", type=float, default=5.0, help="seconds between progress checks")
    archive.add_argument("--timeout", type=float, default=3600.0, help="stop waiting after this many seconds")
    archive.add_argument("--json", action="store_true", help="print EventBridge's description of the replay as JSON")
    archive.set_defaults(run=run_archive)

    sender = commands.add_parser("send", help="put recorded events on a deployed stack's buses")
    _stack_options(sender)
    sender.add_argument("files", nargs="+", type=Path, help="EventBridge event JSON files or folders of them")
    sender.add_argument(
        "--keep-bucket", action="append", default=[], metavar="BUCKET", help="send events naming BUCKET as they are"
    )
    sender.set_defaults(run=run_send)

    record = commands.add_parser("record", help="download what a deployed stack's recorder kept, as event files")
    _stack_options(record)
    record.add_argument("out_dir", type=Path, help="write one JSON file per event here")
    record.add_argument("--since", default="1h", type=_duration, help="how far back: 30m, 2h, 7d (default: 1h)")
    record.add_argument("--until", default="now", type=_moment, help="ISO 8601 time, or 30m ago (default: now)")
    record.add_argument(
        "--seed", type=Path, help="also download the S3 objects the events name (exact versions) into this folder"
    )
    record.set_defaults(run=run_record)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (SandboxError, AwsProblem, RecordingError, ContextError) as error:
        print(f"replay: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        progress("interrupted")
        return EXIT_INTERRUPTED


def _stack_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--stack", required=True, help="the deployed stack's name (stackName, RegistryAutopilot)")
    command.add_argument("--region", help="its region (default: AWS_REGION or the profile's)")
    command.add_argument("--profile", help="the AWS profile to use (default: AWS_PROFILE or the default chain)")


def _moment(text: str) -> datetime:
    try:
        return parse_time(text, now=datetime.now(UTC))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _open(args: argparse.Namespace) -> DeployedStack:
    stack = open_stack(args.stack, region=args.region, profile=args.profile)
    progress(f"stack {stack.name} in {stack.region}")
    return stack


def _load(paths: Iterable[Path]) -> list[RecordedEvent]:
    """The events in every file; a folder stands for its `*.json` files, in name order."""
    files = [file for path in paths for file in (sorted(path.glob("*.json")) if path.is_dir() else [path])]
    if not files:
        raise RecordingError(f"no event files in {', '.join(map(str, paths))}")
    return [event for path in files for event in load_recording(path)]


# --- sandbox, local ---------------------------------------------------------------------------------------


def run_sandbox(args: argparse.Namespace) -> int:
    return sandbox_command.run(args, progress=progress)


def run_local(args: argparse.Namespace) -> int:
    recorded = _load(args.files)
    if args.seed is not None and not args.seed.is_dir():
        print(f"replay: error: --seed {args.seed} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    if args.context is not None and args.attach:
        print("replay: error: --context applies to a new sandbox; leave out --attach", file=sys.stderr)
        return EXIT_USAGE
    settings = load_context(args.context) if args.context is not None else None
    overrides = sandbox_command.function_settings(args.policies)

    sandbox = attached(args.attach) if args.attach else new_sandbox(settings, overrides, progress=progress).start()
    try:
        if args.seed is not None:
            keys = sandbox.upload_dir(args.seed, notify=False)
            progress(f"seeded {len(keys)} objects from {args.seed} (without events)")
        outcomes, quiet = replay_files(
            sandbox, recorded, keep_buckets=args.keep_bucket, timeout=args.timeout, progress=progress
        )
        registry = stable_registry(sandbox.registry_state())
        if args.json:
            for outcome in outcomes:
                print(json.dumps(outcome.as_dict(), sort_keys=True))
            print(json.dumps({"registry": registry}, sort_keys=True))
        else:
            for position, outcome in enumerate(outcomes, start=1):
                print(format_outcome(outcome, position=position, total=len(outcomes)))
            print(format_registry(registry))
        return 0 if quiet else EXIT_NOT_QUIET
    finally:
        sandbox.stop()


# --- archive, send, record (a deployed stack) --------------------------------------------------------------


def run_archive(args: argparse.Namespace) -> int:
    stack = _open(args)
    archive = archives.find_archive(stack, args.archive)
    archives.check_window(archive, args.start, args.end, now=datetime.now(UTC))
    rule_arns = archives.rule_arns(stack, archive, args.rule)
    name = args.name or archives.replay_name(stack.name, args.archive, datetime.now(UTC))
    archives.start_replay(stack, archive, name=name, start=args.start, end=args.end, rule_arns=rule_arns)
    progress(
        f"started replay {name}: archive {archive.name}, {iso(args.start)} .. {iso(args.end)}, into {archive.bus_name}"
    )
    events = stack.client("events")
    try:
        final = archives.wait(
            lambda: events.describe_replay(ReplayName=name),
            progress=progress,
            poll_seconds=args.poll_seconds,
            timeout=args.timeout,
        )
    except archives.ReplayTimedOut as timed_out:
        progress(f"stopped waiting after {args.timeout:.0f} s: {timed_out}; it goes on in EventBridge")
        final = timed_out.description
    except KeyboardInterrupt:
        progress(f"stopped waiting; replay {name} goes on (cancel it: aws events cancel-replay --replay-name {name})")
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps({k: v for k, v in final.items() if k != "ResponseMetadata"}, default=str, sort_keys=True))
    else:
        print(archives.summary(final, archive=archive, rules=args.rule))
    return 0 if final.get("State") == "COMPLETED" else EXIT_FAILED


def run_send(args: argparse.Namespace) -> int:
    recorded = _load(args.files)
    stack = _open(args)
    sendings = send.send(stack, recorded, keep_buckets=args.keep_bucket, progress=progress)
    for sending in sendings:
        print(send.describe(sending))
    refused = sum(1 for sending in sendings if not sending.sent)
    progress(f"sent {len(sendings) - refused} of {len(sendings)} events")
    return EXIT_FAILED if refused else 0


def run_record(args: argparse.Namespace) -> int:
    stack = _open(args)
    start = args.until - args.since
    result = recorder.download(stack, args.out_dir, start=start, end=args.until, seed_dir=args.seed, progress=progress)
    for reason in [*result.skipped, *result.objects_skipped]:
        progress(f"warning: skipped {reason}")
    print(f"wrote {len(result.files)} event files to {args.out_dir} ({iso(start)} .. {iso(args.until)})")
    if args.seed is not None:
        print(f"downloaded {len(result.objects)} objects to {args.seed}")
    seed = f" --seed {args.seed}" if args.seed is not None else ""
    if result.files:
        print(f"replay them: python -m replay local{seed} {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
