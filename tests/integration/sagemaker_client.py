"""Runs the registry adapter against a SageMaker tracking server ARN, in a process of its own.

The `sagemaker-mlflow` plugin is loaded only here (its directory is on this process's PYTHONPATH; see
`functions/requirements-sagemaker.lock` for why it is not in the shared environment). The tracking server is the
recorded registry on 127.0.0.1 (`SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT`). Prints one JSON line: what each call returned.

    python -m tests.integration.sagemaker_client
"""

from __future__ import annotations

import json
import os
import sys

from functions.adapters.registry_factory import connect_registry
from functions.domain.tags import REGISTERED_BY, REGISTERED_BY_TAG


def main() -> int:
    import sagemaker_mlflow  # noqa: F401 - fails loudly when the plugin directory is not on the path

    registry = connect_registry(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    run = registry.get_run("0123456789abcdef0123456789abcdef")
    logged = registry.get_logged_model("m-0123456789abcdef0123456789abcdef")
    found = registry.find_version("churn", ["s3://bucket/models/churn/1"], "s3://bucket/models/churn/1/MLmodel#v1")
    created = registry.create_version(
        "churn", "s3://bucket/models/churn/1", run_id=None, model_id=None, tags={REGISTERED_BY_TAG: REGISTERED_BY}
    )
    print(
        json.dumps(
            {
                "registry": type(registry).__name__,
                "run_experiment": run.experiment_id if run else None,
                "logged_model_status": logged.status if logged else None,
                "found": found is not None,
                "created_version": created.version,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
