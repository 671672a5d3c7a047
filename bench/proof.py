"""What the load-and-predict proof (`proof: smoke`) costs, per model size, with the same prover the validate route runs.

For each size, a real scikit-learn model (a random forest with more or fewer trees) saved by MLflow with its input
example and signature, then proved three ways by `functions.adapters.model_proof.ModelProver`:

- `load+predict`: `env_manager="local"`, the dev venv's interpreter and packages in a process of its own: the proof
  without any environment build (what a proof costs once its environment exists, minus the activation).
- `cold`: `env_manager="uv"` with an empty environment cache, offline from the wheelhouse `make wheelhouse`
  prepares (the dev venv's pins, no network): the model's declared environment built from nothing.
- `warm`: the same again with that cache, so the environment is found by its requirements' hash and reused.

The reference beside it is the current gate's time in the same `make bench` run: the validate route's handler time
per upload in the pipeline sandbox (no proof). Without a wheelhouse or `uv`, the two uv figures say why they are
missing instead of reaching a package index.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from functions.adapters.model_proof import ModelProver, ProofSettings

WHEELHOUSE = Path(__file__).resolve().parents[1] / ".cache" / "wheelhouse"
SIZES = {"small": 1, "medium": 100, "large": 2000}
"""Trees in the forest: about 15 KB, 0.8 MB and 16 MB of model directory on the 500-row dataset below."""


def save_forest(directory: Path, trees: int) -> Path:
    import mlflow.sklearn
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    random = np.random.RandomState(0)
    features = random.rand(500, 8)
    labels = (features[:, 0] + features[:, 1] > 1).astype(int)
    forest = RandomForestClassifier(n_estimators=trees, random_state=0).fit(features, labels)
    path = directory / f"forest-{trees}"
    signature = infer_signature(features[:3], forest.predict(features[:3]))
    mlflow.sklearn.save_model(
        forest, path, serialization_format="cloudpickle", signature=signature, input_example=features[:3]
    )
    return path


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _prove(model: Path, settings: ProofSettings) -> dict:
    run = ModelProver(settings).prove(model, has_signature=True)
    failed = [f"{check.name}: {check.observed}" for check in run.checks if not check.passed]
    return {"seconds": run.seconds, "passed": not failed, "failed": failed}


def uv_unavailable() -> str | None:
    """Why the uv figures cannot be measured here, or None."""
    if shutil.which("uv") is None:
        return "no uv binary on PATH"
    if not (WHEELHOUSE / ".complete").exists():
        return f"no wheelhouse at {WHEELHOUSE} (make wheelhouse)"
    return None


def measure(*, sizes: list[str], with_uv: bool, progress: Callable[[str], None]) -> dict:
    """Each size proved load+predict, cold and warm; figures in seconds."""
    why_not = uv_unavailable() if with_uv else "not asked (--no-proof-uv)"
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-proof-") as scratch:
        for size in sizes:
            model = save_forest(Path(scratch), SIZES[size])
            entry: dict = {"trees": SIZES[size], "model_bytes": _bytes(model)}
            progress(f"proof: {size} model ({entry['model_bytes'] / 1e6:.2f} MB), load+predict")
            entry["load_predict"] = _prove(model, ProofSettings(env_manager="local"))
            if why_not is None:
                cache = Path(scratch) / f"envs-{size}"
                uv = ProofSettings(env_manager="uv", offline=True, find_links=(WHEELHOUSE,), env_cache_dir=cache)
                progress(f"proof: {size} model, cold environment build (uv, offline from the wheelhouse)")
                entry["cold"] = _prove(model, uv)
                progress(f"proof: {size} model, warm (cached) environment")
                entry["warm"] = _prove(model, uv)
            figures[size] = entry
    return {"sizes": figures, "uv_not_measured": why_not}
