"""`make demo` runs the demo (`python -m demo`): every step of a model's life must show, as the demo says it does."""

from __future__ import annotations

import getpass
import re
import subprocess
import sys

import pytest

from functions.project import ROOT

REPO = ROOT
MODEL = "wine-classifier"
PROVED = "wine-proved"


def _steps(stdout: str) -> dict[int, list[str]]:
    """The story's numbered steps: `[n] ...` and the indented lines under it."""
    steps: dict[int, list[str]] = {}
    current = None
    for line in stdout.splitlines():
        match = re.match(r"^\[(\d+)\] ", line)
        if match:
            current = int(match.group(1))
            steps[current] = [line]
        elif current is not None and line.startswith("    "):
            steps[current].append(line.strip())
        else:
            current = None
    return steps


def _aliases_after(lines: list[str]) -> dict[str, str]:
    (held,) = [line for line in lines if line.startswith("aliases now: ")]
    return dict(pair.split("=v") for pair in held.removeprefix("aliases now: ").split())


def _moves(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("moved ")]


@pytest.mark.slow
def test_the_demo_shows_the_whole_life_of_a_model():
    # GIVEN a fresh machine's view: nothing running
    # WHEN the demo runs in its own sandbox
    demo = subprocess.run([sys.executable, "-m", "demo"], cwd=REPO, capture_output=True, text=True, timeout=300)
    user = getpass.getuser()
    # THEN it exits cleanly, saying what it waited for on the way
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert f"demo: waiting for the new version of {MODEL} to be registered and validated" in demo.stderr
    assert f"demo: waiting for {MODEL}@champion to move back" in demo.stderr
    out = demo.stdout
    assert f"The life of {MODEL} (policy demo/policies/{MODEL}.yaml: gate accuracy at least 0.85;" in out
    steps = _steps(out)
    assert sorted(steps) == [1, 2, 3, 4, 5, 6, 7]

    # AND the first version becomes challenger and champion
    first = steps[1]
    assert first[0].startswith("[1] v1 arrives: ")
    assert "verdict: passed" in first
    assert [m.split(":")[0] for m in _moves(first)] == [
        "moved challenger (none) -> v1 by autopilot",
        "moved champion (none) -> v1 by autopilot",
    ]
    assert _aliases_after(first) == {"challenger": "1", "champion": "1"}

    # AND a better one takes champion (and challenger)
    better = steps[2]
    assert "verdict: passed" in better
    assert any(m.startswith("moved champion v1 -> v2 by autopilot: auto: passed validation; accuracy") for m in better)
    assert _aliases_after(better) == {"challenger": "2", "champion": "2"}

    # AND a worse one passes but takes nothing
    worse = steps[3]
    assert "verdict: passed" in worse
    assert _moves(worse) == []
    assert "no alias moved: v2 keeps champion with the higher accuracy (0.963)" in worse
    assert _aliases_after(worse) == {"challenger": "2", "champion": "2"}

    # AND one below the gate's minimum is refused with its reason
    refused = steps[4]
    assert refused[0].startswith("[4] v4 arrives: ")
    (verdict,) = [line for line in refused if line.startswith("verdict: ")]
    assert re.fullmatch(r"verdict: failed, refused: accuracy 0\.6\d* is below the minimum 0\.85", verdict), verdict
    assert _moves(refused) == []
    assert _aliases_after(refused) == {"challenger": "2", "champion": "2"}

    # AND a second model whose policy proves every version: the first is proved and becomes champion
    assert (
        f"Proved before it serves: {PROVED} (policy demo/policies/{PROVED}.yaml: gate accuracy at least 0.85; "
        "proof smoke (load and predict);" in out
    )
    proved = steps[5]
    assert proved[0].startswith(f"[5] {PROVED} v1 arrives: ")
    assert "verdict: passed (proved: it loads and predicts on its input example)" in proved
    assert _aliases_after(proved) == {"challenger": "1", "champion": "1"}

    # AND its second version clears the metric gate (as accurate) but fails the proof: refused on one line, with the
    # proof check's reason and what failed (its input example lacks a column of the signature), and no alias moves
    unproved = steps[6]
    assert unproved[0].startswith(f"[6] {PROVED} v2 arrives: ")
    assert re.search(r"accuracy 0\.963$", unproved[0]), unproved[0]
    (verdict,) = [line for line in unproved if line.startswith("verdict: ")]
    assert verdict == (
        "verdict: failed, refused: signature_mismatch: input failed: "
        "mlflow.exceptions.MlflowException: Model is missing inputs ['proline']."
    ), verdict
    assert _moves(unproved) == []
    assert _aliases_after(unproved) == {"challenger": "1", "champion": "1"}

    # AND a rollback through `python -m ops`, shown as typed, moves champion back to v1
    rollback = steps[7]
    (command,) = [line for line in rollback if line.startswith("$ ")]
    assert re.fullmatch(
        r"\$ python -m ops --sandbox \S+/sandbox\.json rollback wine-classifier --alias champion", command
    )
    assert any(
        line.startswith("Rollback Requested: wine-classifier@champion -> its previous holder") for line in rollback
    )
    assert _moves(rollback) == [f"moved champion v2 -> v1 by {user}: rolled back by {user}"]
    assert _aliases_after(rollback) == {"challenger": "2", "champion": "1"}

    # AND models:/wine-classifier@champion loads and predicts what v1 predicts
    predictions = re.search(
        r"^Predictions of models:/wine-classifier@champion \(v1\) for 8 held-out wines: \[([0-9, ]+)\] "
        r"\(true classes \[[0-9, ]+\]: \d of 8 right; the same as v1 predicts in memory\)$",
        out,
        re.MULTILINE,
    )
    assert predictions, out
    assert {int(value) for value in predictions.group(1).split(",")} <= {0, 1, 2}

    # AND the registry table has an aliases column, the verdicts and the final holders
    table = out.split("Model registry")[1].split("Alias history")[0]
    header = next(line.split() for line in table.splitlines() if line.startswith("model "))
    assert header == ["model", "version", "accuracy", "validation", "aliases", "source"]
    models = {"breast-cancer-classifier", "iris-classifier", MODEL, PROVED}
    rows = [line.split() for line in table.splitlines() if line.split()[:1] and line.split()[0] in models]
    assert sorted((row[0], row[1], row[3], row[4]) for row in rows) == [
        ("breast-cancer-classifier", "1", "passed", "challenger"),
        ("iris-classifier", "1", "passed", "challenger"),
        ("wine-classifier", "1", "passed", "champion"),
        ("wine-classifier", "2", "passed", "challenger"),
        ("wine-classifier", "3", "passed", "-"),
        ("wine-classifier", "4", "failed", "-"),
        ("wine-proved", "1", "passed", "challenger,champion"),
        ("wine-proved", "2", "failed", "-"),
    ]

    # AND below it, champion's history from `python -m ops history`: who moved it, when, why
    history = out.split("Alias history of wine-classifier@champion (newest last)\n")[1].split("\n\n")[0].splitlines()
    assert re.fullmatch(
        r"    \$ python -m ops --sandbox \S+/sandbox\.json history wine-classifier --alias champion", history[0]
    )
    moves = [
        re.match(r"    (\S+)  v(\S+) -> v(\d+)  by ([^:]+): (.*)  \(correlation id \S+\)$", line)
        for line in history[1:]
    ]
    assert all(moves), history
    assert [(m.group(2), m.group(3), m.group(4)) for m in moves] == [
        ("-", "1", "autopilot"),
        ("1", "2", "autopilot"),
        ("2", "1", user),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", m.group(1)) for m in moves)
    assert moves[2].group(5) == f"rolled back by {user}"

    # AND every event is accounted for, with no dead letters
    assert (
        "8 'Model Version Registered', 8 'Model Version Validated', 9 'Model Alias Moved' events emitted, 0 dead letters"
        in out
    )
