"""Names and fixed settings of the stack. Deployment-specific values live in `stacks/config.py` instead."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_

from functions.project import PACKAGE_PREFIX, ROOT
from stacks.outputs import pascal_case  # noqa: F401 - re-exported: construct ids and output names share it

# The Lambda code is the `functions/` package as the repository has it (handlers `functions.handlers.<route>...`).
# Installed from the wheel, the importable copy is `registry_autopilot.functions` (its imports rewritten), so the
# wheel also ships the unchanged tree, as data, under `_lambda/` (build_backend/, docs/deploying.md).
LAMBDA_SOURCE = ROOT / "_lambda" if PACKAGE_PREFIX else ROOT
FUNCTIONS_DIR = LAMBDA_SOURCE / "functions"
FUNCTIONS_REQUIREMENTS = FUNCTIONS_DIR / "requirements.txt"
# Every package of the bundle, pinned for Lambda's platform (`make lock` writes it from requirements.txt).
FUNCTIONS_LOCK = FUNCTIONS_DIR / "requirements.lock"
# The SageMaker MLflow plugin, in a layer of its own that only SageMaker deployments get (see the file).
FUNCTIONS_SAGEMAKER_LOCK = FUNCTIONS_DIR / "requirements-sagemaker.lock"
# Validation policies ship in the code asset beside `functions/`: the default `policies_dir` of stacks/autopilot.py.
POLICIES_DIR = ROOT / "policies"


def project_path(value: str) -> Path:
    """A file named in the context or a prop: absolute as given; relative to the repository in a checkout, and,
    installed, to the working directory (the host app's folder, where `cdk` runs it)."""
    path = Path(value)
    return path if path.is_absolute() else (Path.cwd() if PACKAGE_PREFIX else ROOT) / path


# --- Lambda ---------------------------------------------------------------------------------------------------------
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
LAMBDA_PYTHON_VERSION = "3.14"  # must match LAMBDA_RUNTIME: pip picks wheels for it
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
# Lambda's python3.14 runs on Amazon Linux 2023 (glibc 2.34). pip prefers the platforms in this order.
LAMBDA_PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
# Provided by the Lambda runtime: left out of the bundle to keep it small (pip pulls them only transitively).
RUNTIME_PROVIDED_PACKAGES = ("boto3", "botocore", "s3transfer")

# --- Queues and delivery ----------------------------------------------------------------------------------------------
QUEUE_RETENTION = Duration.days(4)
DEAD_LETTER_RETENTION = Duration.days(14)  # the SQS maximum: time to look at and redrive a failure
# EventBridge -> SQS target: retry as long and as often as EventBridge allows (185 attempts over 24 h) before the
# event goes to the route's dead-letter queue. A target failure here means SQS itself is unreachable or the queue
# policy is broken, both of which are fixed by an operator within a day; dropping an S3 event would lose a model.
TARGET_RETRY_ATTEMPTS = 185
TARGET_MAX_EVENT_AGE = Duration.hours(24)
# Routes other than `register` get this event-source-mapping concurrency unless the stack is told otherwise.
DEFAULT_ROUTE_MAX_CONCURRENCY = 5

# --- Buckets -----------------------------------------------------------------------------------------------------------
ACCESS_LOG_EXPIRATION = Duration.days(365)
ABORT_INCOMPLETE_MULTIPART_UPLOAD_AFTER = Duration.days(7)
