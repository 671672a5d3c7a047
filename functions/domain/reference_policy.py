"""The policy's `reference:` key: a dataset of the platform's on which the gate scores the candidate and the holder
of the compared alias itself (`functions.domain.reference`), instead of trusting the metrics the training job logged.

    reference:
      dataset: datasets/churn/holdout.csv   # an S3 key of the artifact bucket, under datasets/; .csv or .parquet
      target: churned                       # the label column; every other column is a feature
      metrics: [accuracy]                   # accuracy (classifiers); rmse, mae, r2 (regressors)
      max_rows: 100000                      # the cap (at most 1,000,000): a larger dataset fails, never truncated

Pure schema, imported by `functions.domain.policy` (which must not be imported from here).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DATASETS_PREFIX = "datasets/"
"""Reference datasets live under this prefix of the artifact bucket, owned by the platform team."""
DATASET_FORMATS = {".csv": "csv", ".parquet": "parquet"}
DEFAULT_MAX_ROWS = 100_000
MAX_ROWS_LIMIT = 1_000_000
MAX_DATASET_BYTES = 256 * 1024 * 1024
"""A dataset object larger than this fails `reference:dataset` (`dataset_too_large`) before it is downloaded."""

ReferenceMetric = Literal["accuracy", "rmse", "mae", "r2"]
HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "r2": True, "rmse": False, "mae": False}
"""Each metric's direction, which a `compare` on it must state."""


class ReferenceRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(min_length=1, max_length=1024)
    target: str = Field(min_length=1, max_length=255)
    metrics: Annotated[list[ReferenceMetric], Field(min_length=1)]
    max_rows: int = Field(default=DEFAULT_MAX_ROWS, ge=1, le=MAX_ROWS_LIMIT)

    @field_validator("dataset")
    @classmethod
    def _a_dataset_key(cls, key: str) -> str:
        if not key.startswith(DATASETS_PREFIX) or key == DATASETS_PREFIX:
            raise ValueError(f"{key!r} is not under {DATASETS_PREFIX} of the artifact bucket")
        if any(part in ("", ".", "..") for part in key.split("/")):
            raise ValueError(f"{key!r} has an empty, '.' or '..' part")
        if dataset_format(key) is None:
            raise ValueError(f"{key!r} is neither CSV nor Parquet (its name must end with .csv or .parquet)")
        return key

    @field_validator("metrics")
    @classmethod
    def _each_once(cls, metrics: list[str]) -> list[str]:
        if len(set(metrics)) != len(metrics):
            raise ValueError("a metric is listed twice")
        return metrics


def dataset_format(key: str) -> str | None:
    """`csv` or `parquet` from the key's suffix (any case); None for anything else."""
    lowered = key.lower()
    return next((kind for suffix, kind in DATASET_FORMATS.items() if lowered.endswith(suffix)), None)


def reference_problem(rule: ReferenceRule, *, proof_enabled: bool, compare: tuple[str, str] | None) -> str | None:
    """What is wrong with a policy's `reference` beside its other keys (None: nothing). `compare` is the compare
    rule's (metric, direction)."""
    if not proof_enabled:
        return "the candidate and the holder are scored in the proof's process: the policy needs `proof: smoke`"
    if compare is None:
        return None
    metric, direction = compare
    if metric not in rule.metrics:
        return f"compare.metric {metric} is not among reference.metrics: add it, or compare on one of them"
    expected = "higher" if HIGHER_IS_BETTER[metric] else "lower"
    if direction != expected:
        return f"compare.direction must be {expected} for {metric}"
    return None
