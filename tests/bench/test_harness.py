"""Smoke test of `python -m bench` at tiny sizes: the JSON has every figure, each measured. No time is asserted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.__main__ import main
from functions.routing import ROUTES


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_the_harness_measures_every_figure_beside_its_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # GIVEN tiny sizes (one sample, a few uploads) and a JSON path
    output = tmp_path / "bench.json"

    # WHEN the harness runs end to end (fresh processes, its own sandbox, a bundling cdk synth)
    code = main(
        [
            "--samples",
            "1",
            "--latency-uploads",
            "2",
            "--throughput-uploads",
            "6",
            "--models",
            "2",
            "--backfill-models",
            "4",
            "--proof-sizes",
            "small",
            "--no-proof-uv",
            "--output",
            str(output),
        ]
    )

    # THEN it wrote the JSON and printed a table row per figure
    assert code == 0
    report = json.loads(output.read_text())
    table = capsys.readouterr().out
    for figure in (
        "register INIT",
        "end to end p50",
        "registered/s",
        "MLflow requests per upload",
        "asset ",
        "RSS",
        "backfill registered/s",
        "proof small model",
    ):
        assert figure in table

    # AND every cold-start figure was measured, for every route, beside the bare client import
    cold = report["cold_start"]
    assert _positive(cold["reference_import_s"])
    assert set(cold["handlers"]) == {route.name for route in ROUTES}
    for figures in cold["handlers"].values():
        assert all(_positive(figures[name]) for name in ("init_s", "init_ratio", "setup_s", "setup_ratio"))
        assert figures["setup_s"] >= figures["init_s"]

    # AND every upload went the whole way, with nothing dead-lettered and every event matched to an upload
    pipeline = report["pipeline"]
    assert pipeline["dead_letters"] == {route.name: 0 for route in ROUTES}
    assert pipeline["unmatched_events"] == 0
    for stage in ("Model Version Registered", "Model Version Validated", "Model Alias Moved"):
        latency = pipeline["latency"][stage]
        assert _positive(latency["p50_s"])
        assert latency["p50_s"] <= latency["p95_s"] <= latency["max_s"]

    # AND throughput, the raw reference and both request counts were measured in the same run
    assert _positive(pipeline["throughput"]["registered_per_s"])
    assert _positive(pipeline["raw_registry"]["writes_per_s"])
    assert pipeline["throughput"]["mlflow_requests"] == sum(pipeline["throughput"]["mlflow_requests_by_path"].values())
    assert pipeline["throughput"]["mlflow_requests_per_upload"] >= 2  # at least a search and a create per upload
    assert pipeline["naive"]["mlflow_requests_per_upload"] >= 3  # register_model, get_run, set alias
    assert pipeline["throughput"]["challenger_on_newest_version"] is True
    # AND the CPU of every sandbox process and the peak memory of every route worker were read
    assert {"moto", "mlflow", "harness"} <= set(pipeline["throughput"]["cpu_ms_per_upload"])
    assert {f"worker {route.name}" for route in ROUTES} <= set(pipeline["throughput"]["cpu_ms_per_upload"])
    assert all(_positive(mb) for mb in pipeline["worker_peak_rss_mb"].values())

    # AND the backfill of models already in the bucket was measured beside the listing alone, in the same run
    backfill = report["backfill"]
    assert backfill["exit_status"] == 0
    assert backfill["dead_letters"] == {route.name: 0 for route in ROUTES}
    assert all(_positive(backfill[name]) for name in ("registered_per_s", "mlflow_requests_per_model"))
    assert 1 <= backfill["peak_concurrent_mlflow_requests"] <= backfill["cap"]
    assert backfill["list"]["objects"] >= backfill["models"]
    assert _positive(backfill["list"]["seconds"])

    # AND the small model was proved (load+predict in a process of its own) and passed; the uv builds say why not
    small = report["proof"]["sizes"]["small"]
    assert small["load_predict"]["passed"] is True, small["load_predict"]["failed"]
    assert _positive(small["load_predict"]["seconds"])
    assert _positive(small["model_bytes"])
    assert "cold" not in small
    assert report["proof"]["uv_not_measured"] == "not asked (--no-proof-uv)"

    # AND the bundled assets were sized: the dependency layer and the functions' code
    assets = report["size"]["assets"]
    assert len(assets) >= 2
    assert all(_positive(asset["unzipped_mb"]) and 0 < asset["zipped_mb"] <= asset["unzipped_mb"] for asset in assets)
    assert _positive(report["gb_seconds_per_1000_uploads"]["total"])
