"""`python -m replay`: run the pipeline locally, and replay events against a deployed stack.

    python -m replay sandbox [--json]          start the sandbox and keep it running until Ctrl+C / SIGTERM
    python -m replay local [--seed DIR] FILE   replay recorded events in a sandbox and say what happened
    python -m replay demo                      train a few scikit-learn models and watch them get registered
    python -m replay archive --stack NAME --from T [--to T] [--rule R]   replay an archive window on AWS
    python -m replay send --stack NAME FILE    put recorded events on a deployed stack's buses
    python -m replay record --stack NAME --since 1h OUT_DIR   download what the stack's recorder kept

Progress goes to stderr, results to stdout. Exit status: 0 done, 1 the operation did not succeed (a replay failed,
an event was refused, the pipeline did not settle), 2 a problem to fix first (arguments, credentials, stack name).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from functions.domain.policy import PolicyError, load_policies
from functions.routing import DEFAULT_ARTIFACT_ROOT_PREFIX, Bus
from functions.settings import DEFAULT_MODEL_NAME_TAG
from replay import archive as archives
from replay import recorder, send
from replay.aws_stack import AwsProblem, DeployedStack, open_stack
from replay.recordings import (
    RecordedEvent,
    RecordingError,
    align_with_object,
    is_s3_event,
    load_recording,
    object_key,
    put_events_entry,
    recorded_bucket,
    rewrite_bucket,
    target_bus,
)
from replay.report import Injection, correlate, format_outcome, format_registry, stable_registry
from replay.times import iso, parse_duration, parse_time
from sandbox.context import ContextError, SandboxSettings, load_context
from sandbox.core import Sandbox
from sandbox.processes import SandboxError

EXIT_NOT_QUIET = 1
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def progress(message: str) -> None:
    print(f"replay: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m replay", description="Run the registry pipeline locally, and replay events on a deployed stack."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sandbox = commands.add_parser("sandbox", help="start the sandbox and keep it running until Ctrl+C or SIGTERM")
    sandbox.add_argument("--json", action="store_true", help="print one JSON line describing the sandbox when ready")
    sandbox.add_argument("--workdir", type=Path, help="keep the MLflow database and logs here (default: a temp dir)")
    sandbox.add_argument("--mlflow-port", type=int, help="MLflow server port (default: a free port)")
    sandbox.add_argument("--aws-port", type=int, help="moto server port (default: a free port)")
    sandbox.add_argument("--artifact-root-prefix", default=DEFAULT_ARTIFACT_ROOT_PREFIX)
    add_policies_option(sandbox)
    sandbox.set_defaults(run=run_sandbox)

    local = commands.add_parser("local", help="inject recorded events into a sandbox and report what happened")
    local.add_argument("files", nargs="+", type=Path, help="EventBridge event JSON files (an event or a list)")
    local.add_argument("--seed", type=Path, help="upload this directory into the bucket first (keys = paths)")
    local.add_argument("--attach", help="use a running sandbox: its --json line, or a file holding it")
    local.add_argument("--json", action="store_true", help="one JSON object per event, then the registry state")
    local.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the pipeline to settle")
    add_policies_option(local)
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

    demo = commands.add_parser("demo", help="train scikit-learn models into a fresh sandbox and show the registry")
    demo.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the pipeline to settle")
    demo.set_defaults(run=run_demo)

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


# --- sandbox -----------------------------------------------------------------------------------------------


def add_policies_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        type=Path,
        help="validation policies to use instead of the repository's policies/ (try a change before deploying it)",
    )


def function_settings(args: argparse.Namespace) -> dict[str, str]:
    """Settings for the sandbox's functions; a policy folder is checked first, as `cdk synth` would."""
    if not getattr(args, "policies", None):
        return {}
    try:
        load_policies(args.policies)
    except PolicyError as error:
        raise SandboxError(f"the policies in {args.policies} are not valid: {error}") from None
    return {"policies_dir": str(args.policies.resolve())}


def run_sandbox(args: argparse.Namespace) -> int:
    sandbox = Sandbox(
        workdir=args.workdir,
        mlflow_port=args.mlflow_port,
        aws_port=args.aws_port,
        artifact_root_prefix=args.artifact_root_prefix,
        function_settings=function_settings(args),
        progress=progress,
    )
    try:
        sandbox.start()
        if args.json:
            print(json.dumps(sandbox.info(), sort_keys=True), flush=True)
        else:
            print(describe(sandbox), flush=True)
        while True:
            time.sleep(0.5)
            sandbox.check_running()
    except KeyboardInterrupt:
        progress("stopping")
        return 0
    finally:
        sandbox.stop()


def describe(sandbox: Sandbox) -> str:
    """The friendly block: what to export, where things are, and how to send a model through."""
    exports = "\n".join(f"  export {name}={value}" for name, value in sandbox.client_environment().items())
    queues = "\n".join(
        f"  {name:<10} {wiring.queue_url}\n  {'':<10} dead letters: {wiring.dead_letter_queue_url}"
        for name, wiring in sorted(sandbox.wiring.items())
    )
    return f"""\
Sandbox ready: moto {sandbox.aws_endpoint_url}, MLflow {sandbox.mlflow_tracking_uri}. Ctrl+C stops it.

Point your shell (or notebook) at it:
{exports}

Artifact bucket  s3://{sandbox.bucket}   (MLflow artifact root {sandbox.artifact_root})
Project bus      {sandbox.event_bus}
Queues
{queues}
Logs             {sandbox.logs_dir}

Log a model the MLflow way (registered as "my-model" by its tag):
  import mlflow
  experiment_id = mlflow.create_experiment("my-experiment", artifact_location="{sandbox.artifact_root}/my-experiment")
  with mlflow.start_run(experiment_id=experiment_id):
      mlflow.sklearn.log_model(model, name="model", tags={{"{DEFAULT_MODEL_NAME_TAG}": "my-model"}})

or upload a saved model (mlflow.sklearn.save_model(model, "my-model-dir")) as it is:
  aws s3 cp --recursive my-model-dir s3://{sandbox.bucket}/models/my-model/1/
"""


# --- local -------------------------------------------------------------------------------------------------


def run_local(args: argparse.Namespace) -> int:
    recorded = _load(args.files)
    if args.seed is not None and not args.seed.is_dir():
        print(f"replay: error: --seed {args.seed} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    if args.context is not None and args.attach:
        print("replay: error: --context applies to a new sandbox; leave out --attach", file=sys.stderr)
        return EXIT_USAGE
    settings = load_context(args.context) if args.context is not None else None

    sandbox = _attached(args.attach) if args.attach else _new_sandbox(settings, function_settings(args)).start()
    try:
        if args.seed is not None:
            keys = sandbox.upload_dir(args.seed, notify=False)
            progress(f"seeded {len(keys)} objects from {args.seed} (without events)")
        # One file at a time: the events of a file go in together (a duplicate delivery stays concurrent), and
        # the pipeline settles before the next file, so a recorded sequence (upload, then promotion) keeps its order.
        injections, exit_code = [], 0
        for _, items in itertools.groupby(recorded, key=lambda item: item.file):
            injections += [inject(sandbox, item, keep_buckets=args.keep_bucket) for item in items]
            try:
                sandbox.wait_until_quiet(timeout=args.timeout)
            except TimeoutError as error:
                progress(f"warning: {error}")
                exit_code = EXIT_NOT_QUIET
        progress(f"injected {len(injections)} events, one file at a time")
        outcomes = correlate(
            injections,
            observed=sandbox.drain_observer(),
            dead_letters=[letter for name in sorted(sandbox.wiring) for letter in sandbox.dlq_messages(name)],
            log_lines=sandbox.worker_log_lines(),
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
        return exit_code
    finally:
        sandbox.stop()


def _new_sandbox(settings: SandboxSettings | None, overrides: dict[str, str]) -> Sandbox:
    """A sandbox with a deployment's settings (`--context`), then the command line's (`--policies`) on top."""
    if settings is None:
        return Sandbox(function_settings=overrides, progress=progress)
    return Sandbox(
        artifact_root_prefix=settings.artifact_root_prefix,
        function_settings={**settings.function_settings, **overrides},
        progress=progress,
    )


def _attached(value: str) -> Sandbox:
    text = value.strip()
    if not text.startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise SandboxError(f"--attach {value!r} is neither a JSON sandbox description nor a file holding one")
        text = path.read_text().strip().splitlines()[-1]
    sandbox = Sandbox.attach(text)
    sandbox.check_running()
    return sandbox


def inject(sandbox: Sandbox, item: RecordedEvent, *, keep_buckets: Iterable[str] = ()) -> Injection:
    """Put one recorded event on the bus it belongs on, rewritten for this sandbox's bucket (unless kept)."""
    recorded = recorded_bucket(item.event)
    rewrite = recorded is not None and recorded not in set(keep_buckets)
    event = rewrite_bucket(item.event, sandbox.bucket) if rewrite else dict(item.event)
    key = object_key(event)
    if is_s3_event(event) and key:
        head = _head(sandbox, key)
        if head is not None:
            event = align_with_object(
                event, version_id=head.get("VersionId"), etag=head["ETag"], size=int(head["ContentLength"])
            )
    bus = target_bus(event)
    bus_name = "default" if bus is Bus.DEFAULT else sandbox.event_bus
    response = sandbox.client("events").put_events(Entries=[put_events_entry(event, event_bus_name=bus_name)])
    entry = response["Entries"][0]
    if "EventId" not in entry:
        raise SandboxError(
            f"{item.label}: PutEvents refused the event: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
        )
    detail = event.get("detail") or {}
    return Injection(
        label=item.label,
        source=str(event["source"]),
        detail_type=str(event["detail-type"]),
        bus=bus.value,
        event_id=entry["EventId"],
        key=key,
        bucket=recorded_bucket(event),
        correlation_id=detail.get("correlation_id") if bus is Bus.PROJECT else None,
    )


def _head(sandbox: Sandbox, key: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return sandbox.client("s3").head_object(Bucket=sandbox.bucket, Key=key)
    except ClientError:
        return None


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


# --- demo --------------------------------------------------------------------------------------------------


def run_demo(args: argparse.Namespace) -> int:
    from demo.train import main as demo_main

    return demo_main(timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
