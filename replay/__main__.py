"""`python -m replay`: run the pipeline locally.

    python -m replay sandbox [--json]          start the sandbox and keep it running until Ctrl+C / SIGTERM
    python -m replay local [--seed DIR] FILE   replay recorded events in a sandbox and say what happened
    python -m replay demo                      train a few scikit-learn models and watch them get registered

Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from functions.domain.policy import PolicyError, load_policies
from functions.routing import DEFAULT_ARTIFACT_ROOT_PREFIX, Bus
from functions.settings import DEFAULT_MODEL_NAME_TAG
from replay.processes import SandboxError
from replay.recordings import (
    S3_SOURCE,
    RecordedEvent,
    RecordingError,
    align_with_object,
    load_recording,
    object_key,
    put_events_entry,
    recorded_bucket,
    rewrite_bucket,
    target_bus,
)
from replay.report import Injection, correlate, format_outcome, format_registry, stable_registry
from replay.sandbox import Sandbox

EXIT_NOT_QUIET = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def progress(message: str) -> None:
    print(f"replay: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replay", description="Run the registry pipeline locally.")
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
    local.set_defaults(run=run_local)

    demo = commands.add_parser("demo", help="train scikit-learn models into a fresh sandbox and show the registry")
    demo.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the pipeline to settle")
    demo.set_defaults(run=run_demo)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except SandboxError as error:
        print(f"replay: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        progress("interrupted")
        return EXIT_INTERRUPTED


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
    try:
        recorded = [event for path in args.files for event in load_recording(path)]
    except RecordingError as error:
        print(f"replay: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.seed is not None and not args.seed.is_dir():
        print(f"replay: error: --seed {args.seed} is not a directory", file=sys.stderr)
        return EXIT_USAGE

    sandbox = (
        _attached(args.attach)
        if args.attach
        else Sandbox(function_settings=function_settings(args), progress=progress).start()
    )
    try:
        if args.seed is not None:
            keys = sandbox.upload_dir(args.seed, notify=False)
            progress(f"seeded {len(keys)} objects from {args.seed} (without events)")
        injections = [inject(sandbox, item) for item in recorded]
        progress(f"injected {len(injections)} events; waiting for the pipeline to settle")
        exit_code = 0
        try:
            sandbox.wait_until_quiet(timeout=args.timeout)
        except TimeoutError as error:
            progress(f"warning: {error}")
            exit_code = EXIT_NOT_QUIET
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


def inject(sandbox: Sandbox, item: RecordedEvent) -> Injection:
    """Put one recorded event on the bus it belongs on, rewritten for this sandbox's bucket."""
    event = rewrite_bucket(item.event, sandbox.bucket) if recorded_bucket(item.event) else dict(item.event)
    key = object_key(event)
    if event.get("source") == S3_SOURCE and key:
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
        bucket=sandbox.bucket if recorded_bucket(event) else None,
        correlation_id=detail.get("correlation_id") if bus is Bus.PROJECT else None,
    )


def _head(sandbox: Sandbox, key: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return sandbox.client("s3").head_object(Bucket=sandbox.bucket, Key=key)
    except ClientError:
        return None


# --- demo --------------------------------------------------------------------------------------------------


def run_demo(args: argparse.Namespace) -> int:
    from demo.train import main as demo_main

    return demo_main(timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
