"""`python -m bench` (`make bench`): every figure beside its reference measured in the same run.

Prints a table and writes JSON (`reports/bench.json` by default). No figure is asserted anywhere: each row says
whether it meets the project's floor, and the numbers are what this machine did this time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import backfill, coldstart, pipeline, proof, size
from functions.routing import ROUTES

FLOORS = {
    "init_ratio": 1.15,
    "p50_end_to_end_s": 1.5,
    "throughput_ratio": 0.5,
    "requests_ratio": 1.0,
    "asset_unzipped_mb": 130,
}


def machine() -> dict:
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in line
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "load_average": os.getloadavg()}


def save_model(directory: Path) -> Path:
    """A real scikit-learn model, as the integration tests upload it."""
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    path = directory / "iris"
    mlflow.sklearn.save_model(
        LogisticRegression(max_iter=300).fit(features, labels), path, pip_requirements=["scikit-learn"]
    )
    return path


def gb_seconds_per_1000(handler_seconds: dict, uploads: int) -> dict:
    """GB-seconds per 1,000 uploads at each route's configured memory, from the sandbox's handler durations."""
    memory = {route.name: route.memory_mb for route in ROUTES}
    per_route = {
        name: totals["seconds"] / uploads * 1000 * memory[name] / 1024
        for name, totals in handler_seconds.items()
        if name in memory
    }
    return {"per_route": per_route, "total": sum(per_route.values()), "memory_mb": memory}


def rows(report: dict) -> list[tuple[str, str, str, str, str]]:
    """(figure, value, reference, ratio, floor met?) for the table."""
    out = []
    cold = report["cold_start"]
    reference = f"{cold['reference_import_s']:.2f} s bare MlflowClient import"
    for name, figures in cold["handlers"].items():
        for figure, label in (("init", "INIT: import"), ("setup", "INIT + first-call setup")):
            ratio = figures[f"{figure}_ratio"]
            out.append(
                (
                    f"{name} {label}",
                    f"{figures[f'{figure}_s']:.2f} s",
                    reference,
                    f"{ratio:.2f}x",
                    _met(ratio <= FLOORS["init_ratio"], f"<= {FLOORS['init_ratio']}x"),
                )
            )
    latency = report["pipeline"]["latency"]
    moved = latency[pipeline.MOVED]
    out.append(
        (
            f"end to end p50 ({latency['uploads']} uploads)",
            f"{moved['p50_s']:.2f} s",
            f"registered {latency[pipeline.REGISTERED]['p50_s']:.2f} s, validated {latency[pipeline.VALIDATED]['p50_s']:.2f} s",
            "",
            _met(moved["p50_s"] <= FLOORS["p50_end_to_end_s"], f"<= {FLOORS['p50_end_to_end_s']} s"),
        )
    )
    out.append((f"end to end p95 ({latency['uploads']} uploads)", f"{moved['p95_s']:.2f} s", "", "", "-"))
    throughput, raw = report["pipeline"]["throughput"], report["pipeline"]["raw_registry"]
    ratio = throughput["registered_per_s"] / raw["writes_per_s"]
    out.append(
        (
            f"registered/s ({throughput['uploads']} uploads, {throughput['models']} models)",
            f"{throughput['registered_per_s']:.1f}/s",
            f"{raw['writes_per_s']:.1f}/s raw search+create",
            f"{ratio:.2f}",
            _met(ratio >= FLOORS["throughput_ratio"], f">= {FLOORS['throughput_ratio']}"),
        )
    )
    out.append(("completed/s (alias moved)", f"{throughput['completed_per_s']:.1f}/s", "", "", "-"))
    naive = report["pipeline"]["naive"]
    requests_ratio = throughput["mlflow_requests_per_upload"] / naive["mlflow_requests_per_upload"]
    out.append(
        (
            "MLflow requests per upload",
            f"{throughput['mlflow_requests_per_upload']:.1f}",
            f"{naive['mlflow_requests_per_upload']:.1f} naive",
            f"{requests_ratio:.2f}x",
            _met(requests_ratio <= FLOORS["requests_ratio"], "<= naive"),
        )
    )
    out += backfill_rows(report["backfill"])
    out += proof_rows(report["proof"], gate_s=gate_seconds(report["pipeline"]))
    for asset in report["size"]["assets"]:
        out.append(
            (
                f"asset {', '.join(asset['used_by'])[:40]}",
                f"{asset['unzipped_mb']:.1f} MB ({asset['zipped_mb']:.1f} MB zipped)",
                f"{report['size']['limit_unzipped_mb']} MB Lambda limit",
                f"{asset['unzipped_mb'] / report['size']['limit_unzipped_mb']:.2f}",
                _met(asset["unzipped_mb"] <= FLOORS["asset_unzipped_mb"], f"<= {FLOORS['asset_unzipped_mb']} MB"),
            )
        )
    cpu = throughput["cpu_ms_per_upload"]
    handlers = sum(value for name, value in cpu.items() if name.startswith("worker "))
    out.append(
        (
            "CPU per upload, whole sandbox",
            f"{sum(cpu.values()):.0f} ms",
            f"moto {cpu.get('moto', 0):.0f}, MLflow {cpu.get('mlflow', 0):.0f}, handlers {handlers:.0f} ms",
            "",
            "-",
        )
    )
    rss = report["pipeline"]["worker_peak_rss_mb"]
    out.append(("peak RSS per route worker", ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items() if v), "", "", "-"))
    gbs = report["gb_seconds_per_1000_uploads"]
    memory = ", ".join(f"{name} {mb} MB" for name, mb in gbs["memory_mb"].items())
    out.append(("GB-s per 1,000 uploads (sandbox durations)", f"{gbs['total']:.1f}", memory, "", "-"))
    return out


def backfill_rows(figures: dict) -> list[tuple[str, str, str, str, str]]:
    listing, models = figures["list"], figures["models"]
    return [
        (
            f"backfill registered/s ({models} MLmodels, --rate {figures['rate']:g})",
            f"{figures['registered_per_s']:.1f}/s",
            f"listing alone {listing['seconds']:.2f} s ({listing['objects']} keys, {listing['pages']} pages)",
            f"{figures['registered_s'] / listing['seconds']:.0f}x",
            "-",
        ),
        (
            "backfill peak concurrent MLflow requests",
            str(figures["peak_concurrent_mlflow_requests"]),
            f"cap {figures['cap']} (workers)",
            f"{figures['peak_concurrent_mlflow_requests'] / figures['cap']:.2f}",
            _met(figures["peak_concurrent_mlflow_requests"] <= figures["cap"], "<= cap"),
        ),
        ("backfill MLflow requests per model", f"{figures['mlflow_requests_per_model']:.1f}", "", "", "-"),
        (
            "listing per million keys (ListObjectsV2)",
            f"{listing['seconds_per_million_keys']:.0f} s",
            "moto on 127.0.0.1",
            "",
            "-",
        ),
    ]


def gate_seconds(pipeline_report: dict) -> float:
    """The current gate's time per upload in this run: the validate route's handler seconds (no proof) per upload."""
    validate = pipeline_report["handler_seconds"].get("validate", {"seconds": 0.0})
    return validate["seconds"] / pipeline_report["pipeline_uploads"]


def proof_rows(figures: dict, *, gate_s: float) -> list[tuple[str, str, str, str, str]]:
    reference = f"gate {gate_s:.2f} s per upload without proof"
    out = []
    for name, entry in figures["sizes"].items():
        label = f"proof {name} model ({entry['model_bytes'] / 1e6:.2f} MB)"
        for kind, text in (("load_predict", "load+predict"), ("cold", "cold env build"), ("warm", "warm env")):
            if kind not in entry:
                out.append((f"{label} {text}", "not measured", figures["uv_not_measured"], "", "-"))
                continue
            run = entry[kind]
            value = f"{run['seconds']:.1f} s" + ("" if run["passed"] else f" FAILED {', '.join(run['failed'])}")
            out.append((f"{label} {text}", value, reference, f"{run['seconds'] / gate_s:.0f}x" if gate_s else "", "-"))
    return out


def _met(ok: bool, floor: str) -> str:
    return f"{'yes' if ok else 'NO'} ({floor})"


def print_table(table: list[tuple[str, ...]]) -> None:
    header = ("figure", "value", "reference (same run)", "ratio", "floor met")
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *table]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5, help="fresh processes per cold-start figure (median)")
    parser.add_argument("--latency-uploads", type=int, default=100)
    parser.add_argument("--throughput-uploads", type=int, default=500)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument(
        "--backfill-models", type=int, default=10_000, help="MLmodels already in the bucket for the backfill figure"
    )
    parser.add_argument("--backfill-rate", type=float, default=1000.0, help="the backfill's --rate (events/s)")
    parser.add_argument(
        "--proof-sizes", default=",".join(proof.SIZES), help=f"model sizes to prove ({', '.join(proof.SIZES)})"
    )
    parser.add_argument(
        "--no-proof-uv", action="store_true", help="only load+predict: no uv environment builds (cold, warm)"
    )
    parser.add_argument("--cdk-out", type=Path, help="measure this bundled cdk.out instead of running `cdk synth`")
    parser.add_argument("--output", type=Path, default=Path("reports/bench.json"))
    args = parser.parse_args(argv)
    sizes = [name for name in args.proof_sizes.split(",") if name]
    if unknown := sorted(set(sizes) - set(proof.SIZES)):
        parser.error(f"--proof-sizes: unknown size(s) {', '.join(unknown)} (known: {', '.join(proof.SIZES)})")
    logging.getLogger("mlflow").setLevel(logging.WARNING)

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    started = time.monotonic()
    report: dict = {"machine": machine(), "floors": FLOORS}
    progress(f"cold start: {args.samples} fresh processes per figure")
    report["cold_start"] = coldstart.measure(samples=args.samples, progress=progress)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        model_dir = save_model(Path(scratch))
        report["pipeline"] = pipeline.run(
            model_dir=model_dir,
            workdir=Path(scratch) / "sandbox",
            latency_uploads=args.latency_uploads,
            throughput_uploads=args.throughput_uploads,
            models=args.models,
            progress=progress,
        )
        report["backfill"] = backfill.run(
            model_dir=model_dir,
            workdir=Path(scratch) / "backfill",
            models=args.backfill_models,
            rate=args.backfill_rate,
            progress=progress,
        )
    report["proof"] = proof.measure(sizes=sizes, with_uv=not args.no_proof_uv, progress=progress)
    progress("deployment size: " + (f"reading {args.cdk_out}" if args.cdk_out else "bundling cdk synth"))
    report["size"] = size.measure(args.cdk_out)
    report["gb_seconds_per_1000_uploads"] = gb_seconds_per_1000(
        report["pipeline"]["handler_seconds"], report["pipeline"]["pipeline_uploads"]
    )
    report["seconds"] = time.monotonic() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, sort_keys=True))
    print_table(rows(report))
    print(
        f"\n{report['machine']['nproc']} CPUs, {report['machine']['cpu']}, Python {report['machine']['python']}; "
        f"JSON in {args.output}; {report['seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
