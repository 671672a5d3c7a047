"""`make demo` runs `python -m demo`: it must register and validate every model it trains."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_demo_registers_and_validates_every_model_it_trains():
    # GIVEN a fresh machine's view: nothing running
    # WHEN the demo runs in its own sandbox
    result = subprocess.run([sys.executable, "-m", "demo"], cwd=REPO, capture_output=True, text=True, timeout=300)
    # THEN it exits cleanly and shows the three models registered and validated, with no dead letters
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout.split("Model registry")[1]
    rows = [line.split() for line in table.splitlines() if line.split()[:1] and line.split()[0].endswith("-classifier")]
    assert sorted((row[0], row[1], row[2]) for row in rows) == [
        ("breast-cancer-classifier", "1", "passed"),
        ("iris-classifier", "1", "passed"),
        ("wine-classifier", "1", "passed"),
    ]
    assert (
        "3 'Model Version Registered' and 3 'Model Version Validated' events emitted, 0 dead letters" in result.stdout
    )
