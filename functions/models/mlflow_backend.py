"""Which MLflow backend a tracking/registry URI names, and what that implies. Pure: no MLflow import.

The stack (`stacks/config.py`) uses it to validate context keys and to grant the right permissions; the functions
(`functions/adapters/mlflow_connection.py`) use it to turn the credentials secret into the variables MLflow reads.

| Tracking URI | Backend | Credentials |
|---|---|---|
| `https://...` (or `http://` on a private network) | self-hosted | basic auth or bearer token from the secret, or none |
| `databricks` | Databricks | workspace `host` with a `token`, or OAuth `client_id`/`client_secret`, from the secret |
| `arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>` | SageMaker | the function's IAM role (SigV4) |

The registry is Unity Catalog when the registry URI is `databricks-uc`, or when it is empty and the tracking URI
is `databricks` (MLflow's own default).
"""

from __future__ import annotations

import re
from enum import StrEnum


class Backend(StrEnum):
    SELF_HOSTED = "self-hosted"
    DATABRICKS = "databricks"
    SAGEMAKER = "sagemaker"


SAGEMAKER_TRACKING_SERVER = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"mlflow-tracking-server/(?P<name>[A-Za-z0-9](-*[A-Za-z0-9]){0,255})$"
)
SAGEMAKER_MLFLOW_APP = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-app/\S+$")


def backend_of(tracking_uri: str) -> Backend:
    """The backend a tracking URI names (anything that is not Databricks or an ARN is an MLflow server)."""
    if tracking_uri == "databricks" or tracking_uri.startswith("databricks://"):
        return Backend.DATABRICKS
    if tracking_uri.startswith("arn:"):
        return Backend.SAGEMAKER
    return Backend.SELF_HOSTED


def is_unity_catalog(tracking_uri: str, registry_uri: str) -> bool:
    """True when model versions go to Unity Catalog (three-level names, signatures, artifact copies)."""
    if registry_uri:
        return registry_uri == "databricks-uc" or registry_uri.startswith("databricks-uc://")
    return backend_of(tracking_uri) is Backend.DATABRICKS
