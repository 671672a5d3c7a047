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
from dataclasses import replace
from pathlib import Path

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from functions.adapters import aws
from functions.adapters.model_proof import EnvManager, ModelProver, ProofSettings
from functions.domain.policy import Check
from functions.domain.ports import ModelProofs
from functions.domain.proof import LOAD_FAILED, MissingExample, plan_proof
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
    )


class BucketModelProofs(ModelProofs):
    def __init__(self, settings: ProofSettings, client: BaseClient | None = None) -> None:
        self._settings = settings
        self._s3 = client or aws.client("s3")

    def prove(self, bucket: str, prefix: str, *, has_signature: bool, missing_example: str) -> list[Check]:
        example: MissingExample = "skip" if missing_example == "skip" else "fail"
        settings = replace(self._settings, missing_example=example)
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

    def _download(self, bucket: str, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._s3.download_file(bucket, key, str(path))
        except (ClientError, BotoCoreError) as error:
            raise aws.dependency_failure(DEPENDENCY, "S3 GetObject", error) from error


def _stays_inside(name: str) -> bool:
    """Whether a key's path below the model directory stays inside it once written to disk."""
    parts = name.split("/")
    return not name.startswith("/") and all(part not in ("", ".", "..") for part in parts)
