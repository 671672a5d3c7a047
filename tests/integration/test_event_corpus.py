"""The sample corpus replays the same way every time, and as its README says.

`python -m replay local --json` runs twice on the same events, seed and context, each time in a fresh sandbox (its
own moto and MLflow servers), and the two outputs (one JSON object per event, then the registry) must be the same
byte for byte. The outcomes are then checked against the table in `events/README.md`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from functions.domain.tags import origin_tag
from sandbox import REPO_ROOT
from tests.corpus import readme_rows

pytestmark = pytest.mark.slow

COMMAND = [
    *(sys.executable, "-m", "replay", "local", "--json", "--timeout", "90"),
    *("--seed", "events/seed", "--context", "events/context/cdk.json", "--keep-bucket", "someone-elses-bucket"),
    "events/",
]


def _replay_corpus() -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    return subprocess.run(COMMAND, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def _summary(outcome: dict) -> str:
    """An event's outcome in the words of the README's table."""
    if not outcome["routes"]:
        return "no rule matched"
    parts = [f"registered {item['model']} v{item['version']}" for item in outcome["registered"]]
    emitted = outcome["emitted"]
    parts += [e["detail"]["status"] for e in emitted if e["detail_type"] == "Model Version Validated"]
    parts += [
        f"{e['detail']['alias']} v{e['detail']['version']}" for e in emitted if e["detail_type"] == "Model Alias Moved"
    ]
    parts += [f"dead-lettered {letter['reason']}" for letter in outcome["dead_letters"]]
    parts += [f"skipped {skip['reason']}" for skip in outcome["skips"]]
    parts += ["duplicate" for note in outcome["notes"] if note["message"].startswith("duplicate delivery")]
    return ", ".join(parts) or "nothing"


def test_the_sample_corpus_gives_the_same_outcome_on_every_run_and_the_one_its_readme_promises() -> None:
    # GIVEN the sample events, their seed and their context
    # WHEN `replay local --json` replays them twice, each time in a fresh sandbox
    first, second = _replay_corpus(), _replay_corpus()

    # THEN both runs succeed and print exactly the same outcomes and registry state
    assert first.returncode == 0, first.stderr[-2000:]
    assert second.returncode == 0, second.stderr[-2000:]
    assert first.stdout == second.stdout
    *events, registry = (json.loads(line) for line in first.stdout.splitlines())

    # AND each file's events did what the README's table says
    by_file: dict[str, list[str]] = {}
    for outcome in events:
        file_name = outcome["event"].split("/")[-1].split("#")[0]
        by_file.setdefault(file_name, []).append(_summary(outcome))
    assert {name: ", ".join(summaries) for name, summaries in by_file.items()} == readme_rows()

    # AND the registry holds one version per registered model, tagged with its origin
    versions = {model["name"]: [v["version"] for v in model["versions"]] for model in registry["registry"]}
    assert versions == {
        "churn": ["1"],
        "fraud-detector": ["1"],
        "legacy": ["1"],
        "pricing": ["1"],
        "recommender": ["1"],
    }
    [churn] = [model for model in registry["registry"] if model["name"] == "churn"]
    assert churn["versions"][0]["tags"][origin_tag("key")] == "models/churn/2026-11-20/MLmodel"
