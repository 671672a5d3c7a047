"""The demo: the whole life of a model, in a fresh sandbox. `python -m demo` (`make demo`).

Four versions of `wine-classifier` arrive one after the other, each logged with `mlflow.sklearn.log_model`;
the pipeline registers, validates and promotes each from its S3 events, under `demo/policies/` (the sandbox
reads that folder instead of `policies/`):

1. the first passes and becomes `challenger` and `champion`;
2. a better one takes both;
3. a worse one passes, and the aliases stay where they are;
4. one below the policy's minimum accuracy fails the gate: refused, with its reason, and no alias moves;
5. `wine-proved`, a second model whose policy also asks for `proof: smoke` (each version that clears the metric
   gate is loaded and predicted on its saved input example, with the sandbox's own packages): its first version
   is proved and becomes `champion`;
6. its second, as accurate but with an input example that lacks a measurement, clears the metric gate and fails
   the proof (`proof:input`, `signature_mismatch`): refused with that reason, no alias moves;
7. `python -m ops rollback` moves `wine-classifier`'s `champion` back to the version before.

Only `wine-proved` is proved: a proof costs seconds (a process that imports MLflow and the model's flavor), so
`wine-classifier`'s story keeps its pace (docs/policies-and-aliases.md, "The demo", has the times measured).

Then it loads `models:/wine-classifier@champion` with `mlflow.pyfunc.load_model` and predicts, prints the
registry with its aliases, and the champion's history from `python -m ops history`. Two more models arrive
beside the first version, the two other ways a team can hand a model over (`demo.train`).

Results go to stdout, progress (what it waits for) to stderr.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo.train import (
    LOGGED_MODEL,
    PLAIN_MODEL,
    PROVED_MODEL,
    RUN_ARTIFACT_MODEL,
    Trained,
    WineRecipe,
    hand_over_logged_model,
    hand_over_plain_upload,
    hand_over_run_artifacts,
    train_wine,
)
from functions.domain.policy import load_policy_file
from functions.domain.tags import TAG_STATUS
from functions.models.events import DetailType
from functions.project import ROOT
from sandbox import Sandbox, SandboxError, format_table, temporary_environment
from sandbox.command import function_settings

REPO = ROOT
POLICIES = Path(__file__).resolve().parent / "policies"
MODEL = LOGGED_MODEL
ALIAS = "champion"
VERSIONS = (
    WineRecipe("logistic regression on 2 of the 13 measurements", "logistic regression", ("alcohol", "flavanoids")),
    WineRecipe("logistic regression on all 13 measurements", "logistic regression"),
    WineRecipe("decision tree of depth 2", "decision tree", depth=2),
    WineRecipe("decision tree of depth 1", "decision tree", depth=1),
)
PROVED_VERSIONS = (
    WineRecipe("logistic regression on all 13 measurements", "logistic regression"),
    WineRecipe(
        "logistic regression on all 13 measurements, its input example saved without proline",
        "logistic regression",
        example_drops="proline",
    ),
)
PREDICTED_ROWS = 8
PROGRESS_EVERY = 5.0
DEFERRING_ROUTES = ("register", "validate")
REGISTERED = DetailType.MODEL_VERSION_REGISTERED.value
VALIDATED = DetailType.MODEL_VERSION_VALIDATED.value
MOVED = DetailType.MODEL_ALIAS_MOVED.value


class DemoError(RuntimeError):
    """A step of the story did not happen; the message says which."""


def progress(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def say(text: str = "") -> None:
    print(text, flush=True)


class Story:
    def __init__(self, sandbox: Sandbox, scratch: Path, timeout: float) -> None:
        self.sandbox = sandbox
        self.scratch = scratch
        self.timeout = timeout
        self.description = scratch / "sandbox.json"
        self.description.write_text(json.dumps(sandbox.info()))
        self.accuracy: dict[tuple[str, str], float] = {}
        self.trained: dict[tuple[str, str], Trained] = {}
        self.log_lines_seen: dict[str, int] = {}

    # --- waiting -----------------------------------------------------------------------------------

    def wait_for(self, what: str, detail_type: str, *, model_name: str, count: int) -> list[dict]:
        """The matching events once there are `count`, then the pipeline quiet (the alias decisions made)."""
        progress(f"waiting for {what}")
        started = last_said = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= self.timeout:
                raise DemoError(f"gave up waiting for {what} after {self.timeout:.0f} s")
            try:
                found = self.sandbox.wait_for_events(
                    detail_type, model_name=model_name, count=count, timeout=min(1.0, self.timeout - elapsed)
                )
                break
            except TimeoutError:
                self.show_deferrals()
                if time.monotonic() - last_said >= PROGRESS_EVERY:
                    last_said = time.monotonic()
                    progress(f"still waiting for {what} ({last_said - started:.0f} s)")
        progress("waiting for the pipeline to finish with it (the aliases route's decisions)")
        try:
            self.sandbox.wait_until_quiet(timeout=self.timeout)
        except TimeoutError as error:
            raise DemoError(str(error)) from None
        return found

    def show_deferrals(self) -> None:
        """What the route functions put off since the last look (an upload not complete yet, say), and for how long."""
        for route in DEFERRING_ROUTES:
            lines = self.sandbox.worker_log_lines([route])
            for line in lines[self.log_lines_seen.get(route, 0) :]:
                if str(line.get("message", "")).startswith("not ready"):
                    detail = line.get("detail") or line.get("reason")
                    progress(f"the {route} function put it off: {detail} (again in {line.get('delay_seconds', '?')} s)")
            self.log_lines_seen[route] = len(lines)

    # --- reading the registry ----------------------------------------------------------------------

    def aliases(self, model_name: str = MODEL) -> dict[str, str]:
        return dict(self.sandbox.mlflow_client().get_registered_model(model_name).aliases or {})

    def moves(self, model_name: str = MODEL) -> list[dict]:
        return [event["detail"] for event in self.sandbox.observed_events(MOVED, model_name=model_name)]

    def show_aliases(self, model_name: str = MODEL) -> None:
        held = self.aliases(model_name)
        say(f"    aliases now: {' '.join(f'{alias}=v{held[alias]}' for alias in sorted(held)) or '(none)'}")

    def show_moves(self, moves: list[dict]) -> None:
        for move in moves:
            previous = f"v{move['previous_version']}" if move.get("previous_version") else "(none)"
            say(f"    moved {move['alias']} {previous} -> v{move['version']} by {move['actor']}: {move['reason']}")

    # --- the steps ---------------------------------------------------------------------------------

    def others(self) -> None:
        """The two other models, handed over the two other ways (their policy: the default)."""
        for hand_over, name in ((hand_over_plain_upload, PLAIN_MODEL), (hand_over_run_artifacts, RUN_ARTIFACT_MODEL)):
            trained, where = hand_over(self.sandbox, self.scratch)
            self.accuracy[(name, "1")] = trained.accuracy
            progress(f"{name} ({trained.description}, accuracy {trained.accuracy:.3f}) {where}")

    def arrive(self, step: int, recipe: WineRecipe, model_name: str = MODEL) -> None:
        """One version of `model_name` arrives; its verdict (one line: passed, or refused with the reasons) and moves."""
        trained = train_wine(recipe)
        moved_before = len(self.moves(model_name))
        validated = self.sandbox.observed_events(VALIDATED, model_name=model_name)
        seen = {event["detail"]["version"] for event in validated}
        where = hand_over_logged_model(
            self.sandbox, trained, run_name=f"wine-{step}", model_name=model_name, example_drops=recipe.example_drops
        )
        progress(f"{model_name}: {recipe.description} {where}")
        if step == 1:
            self.others()
            for name in (PLAIN_MODEL, RUN_ARTIFACT_MODEL):
                self.wait_for(f"{name} to be registered and validated", VALIDATED, model_name=name, count=1)
        verdicts = self.wait_for(
            f"the new version of {model_name} to be registered and validated",
            VALIDATED,
            model_name=model_name,
            count=len(validated) + 1,
        )
        verdict = next(event["detail"] for event in verdicts if event["detail"]["version"] not in seen)
        version = verdict["version"]
        self.accuracy[(model_name, version)] = trained.accuracy
        self.trained[(model_name, version)] = trained
        named = "" if model_name == MODEL else f"{model_name} "
        say(f"[{step}] {named}v{version} arrives: {recipe.description}, accuracy {trained.accuracy:.3f}")
        if verdict["status"] == "passed":
            proved = [c for c in verdict["checks"] if c["name"].startswith("proof:") and not c["skipped"]]
            say("    verdict: passed" + (" (proved: it loads and predicts on its input example)" if proved else ""))
        else:
            say(f"    verdict: {verdict['status']}, refused: {'; '.join(verdict['reasons'])}")
        moves = self.moves(model_name)[moved_before:]
        self.show_moves(moves)
        if not moves:
            holder = self.aliases(model_name).get(ALIAS)
            why = (
                f"v{holder} keeps {ALIAS} with the higher accuracy ({self.accuracy[(model_name, holder)]:.3f})"
                if holder and verdict["status"] == "passed"
                else "a version that failed its gate never holds an alias"
            )
            say(f"    no alias moved: {why}")
        self.show_aliases(model_name)

    def rollback(self, step: int) -> None:
        moved_before = len(self.moves())
        say(f"[{step}] rollback: {MODEL}@{ALIAS} back to the version that held it before")
        self.ops("rollback", MODEL, "--alias", ALIAS)
        self.wait_for(f"{MODEL}@{ALIAS} to move back", MOVED, model_name=MODEL, count=moved_before + 1)
        self.show_moves(self.moves()[moved_before:])
        self.show_aliases()

    def predict(self) -> None:
        import mlflow.pyfunc

        version = self.aliases()[ALIAS]
        uri = f"models:/{MODEL}@{ALIAS}"
        progress(f"loading {uri} with mlflow.pyfunc.load_model")
        trained = self.trained[(MODEL, version)]
        rows = trained.x_test.head(PREDICTED_ROWS)
        predicted = [int(value) for value in mlflow.pyfunc.load_model(uri).predict(rows)]
        truth = [int(value) for value in trained.y_test.head(PREDICTED_ROWS)]
        own = [int(value) for value in trained.model.predict(rows)]
        right = sum(p == t for p, t in zip(predicted, truth, strict=True))
        say(
            f"Predictions of {uri} (v{version}) for {len(rows)} held-out wines: {predicted} "
            f"(true classes {truth}: {right} of {len(rows)} right; "
            f"{'the same as' if predicted == own else 'NOT the same as'} v{version} predicts in memory)"
        )

    def ops(self, *arguments: str) -> str:
        """Run `python -m ops --sandbox <description> ...`, shown as the command a user would type."""
        command = ["python", "-m", "ops", "--sandbox", str(self.description), *arguments]
        say(f"    $ {shlex.join(command)}")
        result = subprocess.run(  # nosec B603: our own interpreter and arguments
            [sys.executable, *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=self.timeout
        )
        for line in (result.stdout + result.stderr).splitlines():
            say(f"    {line}")
        if result.returncode != 0:
            raise DemoError(f"`{shlex.join(command)}` exited with {result.returncode}")
        return result.stdout


def registry_rows(sandbox: Sandbox, accuracy: dict[tuple[str, str], float]) -> list[list[str]]:
    rows = []
    for model in sandbox.registry_state():
        held: dict[str, list[str]] = {}
        for alias, version in model["aliases"].items():
            held.setdefault(str(version), []).append(alias)
        for item in model["versions"]:
            score = accuracy.get((model["name"], item["version"]))
            rows.append(
                [
                    model["name"],
                    item["version"],
                    f"{score:.3f}" if score is not None else "-",
                    item["tags"].get(TAG_STATUS, "pending"),
                    ",".join(sorted(held.get(item["version"], []))) or "-",
                    item["source"],
                ]
            )
    return rows


def policy_summary(model_name: str = MODEL) -> str:
    policy = load_policy_file(POLICIES / f"{model_name}.yaml").policy
    gate = ", ".join(f"{name} at least {rule.min:g}" for name, rule in policy.metrics.items() if rule.min is not None)
    proved = f"; proof {policy.proof.level} (load and predict)" if policy.proof.enabled else ""
    aliases = ", ".join(f"{alias}: {mode}" for alias, mode in policy.promotion.aliases.items())
    ranked = f", ranked by {policy.compare.metric}" if policy.compare else ""
    return f"gate {gate}{proved}; aliases {aliases}{ranked}"


def tell(sandbox: Sandbox, scratch: Path, timeout: float) -> tuple[Story, bool]:
    """Every step of the story; returns it and whether every model the demo trained is in the registry."""
    story = Story(sandbox, scratch, timeout)
    policy = POLICIES.relative_to(REPO) / f"{MODEL}.yaml"
    say(f"The life of {MODEL} (policy {policy}: {policy_summary()})")
    for step, recipe in enumerate(VERSIONS, start=1):
        story.arrive(step, recipe)
    proved_policy = POLICIES.relative_to(REPO) / f"{PROVED_MODEL}.yaml"
    say(f"Proved before it serves: {PROVED_MODEL} (policy {proved_policy}: {policy_summary(PROVED_MODEL)})")
    for step, recipe in enumerate(PROVED_VERSIONS, start=len(VERSIONS) + 1):
        story.arrive(step, recipe, PROVED_MODEL)
    story.rollback(len(VERSIONS) + len(PROVED_VERSIONS) + 1)
    story.predict()
    say()
    rows = registry_rows(sandbox, story.accuracy)
    say("Model registry (filled, validated and promoted by the pipeline, not by the training code)")
    say(format_table(["model", "version", "accuracy", "validation", "aliases", "source"], rows) if rows else "(empty)")
    say()
    say(f"Alias history of {MODEL}@{ALIAS} (newest last)")
    story.ops("history", MODEL, "--alias", ALIAS)
    return story, {PLAIN_MODEL, RUN_ARTIFACT_MODEL, MODEL, PROVED_MODEL} <= {row[0] for row in rows}


def main(*, timeout: float = 90.0) -> int:
    started = time.monotonic()
    try:
        with (
            Sandbox(progress=progress, function_settings=function_settings(POLICIES)) as sandbox,
            tempfile.TemporaryDirectory() as scratch,
        ):
            quiet_mlflow = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}  # stdout is for the results
            with temporary_environment({**sandbox.client_environment(), **quiet_mlflow}):
                _, complete = tell(sandbox, Path(scratch), timeout)
            counts = {kind: len(sandbox.observed_events(kind)) for kind in (REGISTERED, VALIDATED, MOVED)}
            dead = [letter for name in sorted(sandbox.wiring) for letter in sandbox.dlq_messages(name)]
    except (SandboxError, DemoError) as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2
    say()
    say(", ".join(f"{count} '{kind}'" for kind, count in counts.items()) + f" events emitted, {len(dead)} dead letters")
    for letter in dead:
        say(f"  dead letter on {letter.route}: {letter.reason or 'max receive count exceeded'} {letter.error or ''}")
    progress(f"done in {time.monotonic() - started:.0f} s")
    return 0 if complete and not dead else 1
