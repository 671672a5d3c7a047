"""`python -m reliability [--quick] [SCENARIO...]`: run the scenarios, print a table, write reports/reliability.json.

Each scenario starts a fresh sandbox. `--quick` uses small sizes (what `make test` runs); without it the
sizes are the issue's: 100 artifacts × 3 deliveries, a 30 s outage during 50 uploads, poison at the register
route's real maxReceiveCount, 20 concurrent versions, every hostile case, 500 uploads in a minute, the route workers
SIGKILLed 3 times each during 40 uploads, MLflow frozen 40 s during 20 uploads (and until 10 uploads reach the DLQ),
9 AWS faults during 20 uploads, the emulator frozen for 30 s during 20 uploads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

from reliability.aws_scenarios import AWS_SCENARIOS
from reliability.hostile import hostile
from reliability.scenarios import SCENARIOS, Result

QUICK = {
    "duplicates": {"artifacts": 10},
    "outage": {"uploads": 6, "outage_seconds": 5.0, "models": 2},
    "poison": {"max_receive_count": 2, "letters": 2},
    "concurrency": {"versions": 6},
    "burst": {"uploads": 40, "within_seconds": 5.0},
    "crash": {"uploads": 8, "models": 2, "kills_per_route": 1, "upload_seconds": 8.0, "visibility_timeout_seconds": 60},
    "hang": {
        "uploads": 6,
        "models": 2,
        "hang_seconds": 15.0,
        "dead_letter_uploads": 2,
        "dead_letter_max_receive_count": 2,
    },
    "aws-faults": {"uploads": 6, "models": 2},
    "emulator-outage": {"uploads": 4, "outage_seconds": 5.0, "models": 2},
}
ALL = {**SCENARIOS, "hostile": hostile, **AWS_SCENARIOS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", default=[])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    parser.add_argument("--json", default="reports/reliability.json", help="where to write the report")
    args = parser.parse_args(argv)
    names = args.scenarios or list(ALL)
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(ALL)}")
    results: list[Result] = []
    for name in names:
        print(f"running {name}...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            result = ALL[name](**(QUICK.get(name, {}) if args.quick else {}))
        except Exception as error:  # noqa: BLE001 - a scenario that breaks is a result too: reported, not hidden
            result = Result(name, "(crashed)", observed={"error": f"{type(error).__name__}: {error}"[:2000]})
        result.observed["wall_seconds"] = round(time.monotonic() - started, 1)
        results.append(result)
        print(row(result), flush=True)
        path = write_report(Path(args.json), results, quick=args.quick)  # after each: a long run keeps what it saw
    print(f"\n{'scenario':<16} {'ok':<4} {'seconds':>8}  tried")
    for result in results:
        print(f"{result.scenario:<16} {'yes' if result.ok else 'NO':<4} {result.seconds:>8}  {result.tried}")
    print(f"report: {path}")
    return 0 if all(result.ok for result in results) else 1


def write_report(path: Path, results: list[Result], *, quick: bool) -> Path:
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "quick": quick,
        "results": [dataclasses.asdict(result) for result in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
    return path


def row(result: Result) -> str:
    shown = {k: v for k, v in result.observed.items() if k != "outcomes"}
    return (
        f"{result.scenario}: {'ok' if result.ok else 'NOT OK'} in {result.seconds} s {json.dumps(shown, default=str)}"
    )


if __name__ == "__main__":
    sys.exit(main())
