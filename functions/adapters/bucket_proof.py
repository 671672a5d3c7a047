"""The `ModelProofs` port: a model directory of the artifact bucket, downloaded and proved by `ModelProver`.

The directory is listed first (with sizes): a model over the proof's size limit, without an MLmodel or without an
environment file fails its check before a byte is downloaded. Otherwise every object under the prefix is
downloaded into a scratch directory under the temporary directory (Lambda's /tmp), proved in a process of its own
(`functions.adapters.model_proof`), and deleted. An S3 failure is `Unavailable` (the queue retries); everything
the model does is a check.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from functions.adapters import aws
from functions.adapters.model_proof import EnvManager, ModelProver, ProofSettings
from functions.domain.policy import Check
from functions.domain.ports import ModelProofs
from functions.domain.proof import LOAD_FAILED, MLMODEL, TOO_LARGE_FOR_PROOF, MissingExample, plan_proof
from functions.domain.reference import DATASET_MISSING, DATASET_TOO_LARGE, DatasetVersion, ReferenceScore, ScoreSpec
from functions.domain.reference import failure as reference_failure
from functions.domain.reference_policy import MAX_DATASET_BYTES, ReferenceRule
from functions.observability import logger
from functions.settings import Settings

DEPENDENCY = "artifact_store"


def proof_settings(settings: Settings) -> ProofSettings:
    """The prover's settings from the function's environment (`functions.settings`, PROOF_*)."""
    cache = Path(settings.PROOF_ENV_CACHE_DIR or Path(tempfile.gettempdir()) / "proof-envs")
    links = tuple(Path(link) for link in settings.PROOF_FIND_LINKS.split(os.pathsep) if link)
    manager: EnvManager = "uv" if settings.PROOF == "off" else settings.PROOF
    return ProofSettings(
        env_manager=manager,
        timeout_seconds=float(settings.PROOF_TIMEOUT_SECONDS),
        env_cache_dir=cache,
        index_url=settings.PROOF_INDEX_URL or None,
        find_links=links,
        offline=settings.PROOF_OFFLINE,
        python_downloads=settings.PROOF_PYTHON_DOWNLOADS,
    )


class BucketModelProofs(ModelProofs):
    def __init__(self, settings: ProofSettings, client: BaseClient | None = None) -> None:
        self._settings = settings
        self._s3 = client or aws.client("s3")
        self._deadline: float | None = None

    def begin(self) -> None:
        """A version's proofs start: its proof and reference scorings share the one `timeout_seconds` from now, so
        together they stay inside the function's timeout (which leaves the rest to MLflow's requests)."""
        self._deadline = time.monotonic() + self._settings.timeout_seconds

    def prove(self, bucket: str, prefix: str, *, has_signature: bool, missing_example: str) -> list[Check]:
        example: MissingExample = "skip" if missing_example == "skip" else "fail"
        settings = replace(self._settings, missing_example=example, deadline=self._deadline)
        files = self._list(bucket, prefix)
        escaping = sorted(name for name in files if not _stays_inside(name))
        if escaping:
            message = f"{LOAD_FAILED}: a model file's key leaves its directory: {escaping[0][:200]}"
            return [Check("proof:load", False, message, observed=LOAD_FAILED)]
        planned = plan_proof(
            files, has_signature=has_signature, max_model_bytes=settings.max_model_bytes, missing_example=example
        )
        if isinstance(planned, Check):
            return [planned]
        with tempfile.TemporaryDirectory(prefix="proof-download-") as scratch:
            model_dir = Path(scratch) / "model"
            for name in files:
                self._download(bucket, prefix + name, model_dir / name)
            run = ModelProver(settings).prove(model_dir, has_signature=has_signature)
        logger.info(
            "model proved",
            bucket=bucket,
            prefix=prefix,
            proof_seconds=round(run.seconds, 2),
            proof_stage=run.stage,
            proof_passed=all(check.passed for check in run.checks),
        )
        return run.checks

    def dataset(self, bucket: str, key: str) -> DatasetVersion | Check:
        """HeadObject: the dataset's current version (id, else its ETag) and size; missing or too large is a check."""
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if aws.error_code(error) in ("404", "NoSuchKey", "NotFound"):
                logger.warning("reference dataset missing", bucket=bucket, key=key)
                return reference_failure(DATASET_MISSING, f"s3://{bucket}/{key} does not exist")
            raise aws.dependency_failure(DEPENDENCY, "S3 HeadObject", error) from error
        except BotoCoreError as error:
            raise aws.dependency_failure(DEPENDENCY, "S3 HeadObject", error) from error
        size = int(head.get("ContentLength", 0))
        version_id = head.get("VersionId")
        if not version_id or version_id == "null":  # a bucket without versioning: the content's ETag names it
            version_id = f"etag-{str(head.get('ETag', '')).strip(chr(34))}"
        if size > MAX_DATASET_BYTES:
            message = f"s3://{bucket}/{key} is {size} bytes, over the reference data limit of {MAX_DATASET_BYTES}"
            return reference_failure(DATASET_TOO_LARGE, message)
        return DatasetVersion(key, str(version_id), size)

    def score(self, bucket: str, prefix: str, dataset: DatasetVersion, rule: ReferenceRule) -> ReferenceScore | Check:
        """Downloads the model directory and that version of the dataset, and scores the model in its own process."""
        files = self._list(bucket, prefix)
        if any(not _stays_inside(name) for name in files):
            return reference_failure(LOAD_FAILED, "a model file's key leaves its directory")
        if MLMODEL not in files:
            return reference_failure(LOAD_FAILED, f"s3://{bucket}/{prefix} has no MLmodel: nothing to score")
        if sum(files.values()) > self._settings.max_model_bytes:
            return reference_failure(TOO_LARGE_FOR_PROOF, f"s3://{bucket}/{prefix} is over the proof's size limit")
        with tempfile.TemporaryDirectory(prefix="proof-download-") as scratch:
            model_dir = Path(scratch) / "model"
            for name in files:
                self._download(bucket, prefix + name, model_dir / name)
            data = Path(scratch) / "dataset"
            self._download(bucket, dataset.key, data, version_id=dataset.version_id)
            started = time.monotonic()
            result = ModelProver(replace(self._settings, deadline=self._deadline)).score(
                model_dir, data, ScoreSpec.of(rule)
            )
        logger.info(
            "model scored on reference data",
            bucket=bucket,
            prefix=prefix,
            dataset=dataset.source,
            score_seconds=round(time.monotonic() - started, 2),
            scored=isinstance(result, ReferenceScore),
            reason=None if isinstance(result, ReferenceScore) else result.observed,
        )
        return result

    def _list(self, bucket: str, prefix: str) -> dict[str, int]:
        files: dict[str, int] = {}
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    name = item["Key"][len(prefix) :]
                    if name and not name.endswith("/"):  # folder markers hold nothing to load
                        files[name] = int(item["Size"])
        except (ClientError, BotoCoreError) as error:
            raise aws.dependency_failure(DEPENDENCY, "S3 ListObjectsV2", error) from error
        return files

    def _download(self, bucket: str, key: str, path: Path, *, version_id: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A dataset is read at the version both scores are computed on (not an ETag: that is a bucket without versions).
        extra = {"VersionId": version_id} if version_id and not version_id.startswith("etag-") else None
        try:
            self._s3.download_file(bucket, key, str(path), ExtraArgs=extra)
        except (ClientError, BotoCoreError) as error:
            raise aws.dependency_failure(DEPENDENCY, "S3 GetObject", error) from error


def _stays_inside(name: str) -> bool:
    """Whether a key's path below the model directory stays inside it once written to disk."""
    parts = name.split("/")
    return not name.startswith("/") and all(part not in ("", ".", "..") for part in parts)
