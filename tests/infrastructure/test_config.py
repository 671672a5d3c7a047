"""stacks.config: every context key has a default, a type and a range, and errors name the key."""

from __future__ import annotations

import json

import pytest

from stacks.config import CONTEXT_KEYS, PLACEHOLDER_TRACKING_URI, ConfigError, RegistryConfig
from tests.infrastructure.conftest import REPO_ROOT


def test_defaults_match_cdk_json():
    # GIVEN the project context committed in cdk.json
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]

    # WHEN we compare it with the dataclass defaults
    defaults = RegistryConfig()
    committed = {attr: context[key] for attr, key in CONTEXT_KEYS.items()}

    # THEN every key is in cdk.json with the same default, so documentation and code cannot drift
    assert committed == {attr: getattr(defaults, attr) for attr in CONTEXT_KEYS}
    assert RegistryConfig.from_mapping(context) == defaults


def test_missing_keys_fall_back_to_defaults():
    # GIVEN an empty context
    # WHEN it is read
    config = RegistryConfig.from_mapping({})

    # THEN every value is the default, and the placeholder tracking URI is flagged
    assert config == RegistryConfig()
    assert config.uses_placeholder_tracking_uri
    assert config.effective_tracking_uri == PLACEHOLDER_TRACKING_URI


def test_cli_strings_are_coerced():
    # GIVEN values as `cdk -c key=value` passes them (always strings)
    context = {
        "registerMaxConcurrency": "12",
        "tracing": "TRUE",
        "databricksInstanceProfile": "false",
        "snapStart": "false",
        "experimentModelNames": '{"7": "fraud"}',
        "artifactRootPrefix": "/teams/mlflow/",
        "mlflowTrackingUri": " https://mlflow.internal:5000 ",
    }

    # WHEN they are read
    config = RegistryConfig.from_mapping(context)

    # THEN they have their proper types and the prefix loses its slashes
    assert config.register_max_concurrency == 12
    assert config.tracing is True
    assert config.databricks_instance_profile is False
    assert config.snap_start == "false"
    assert config.experiment_model_names == {"7": "fraud"}
    assert config.artifact_root_prefix == "teams/mlflow"
    assert config.mlflow_tracking_uri == "https://mlflow.internal:5000"
    assert not config.uses_placeholder_tracking_uri
    assert config.max_pending_seconds == 6 * 3600


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("registerMaxConcurrency", 1, r"'registerMaxConcurrency' must be between 2 and 1000; got 1"),
        ("registerMaxConcurrency", 1001, r"'registerMaxConcurrency' must be between 2 and 1000"),
        ("registerMaxConcurrency", "five", r"'registerMaxConcurrency' must be an integer"),
        ("registerMaxConcurrency", True, r"'registerMaxConcurrency' must be an integer"),
        ("registerMaxConcurrency", 2.5, r"'registerMaxConcurrency' must be an integer"),
        ("logRetentionDays", 31, r"'logRetentionDays' must be one of 1, 3, 5, 7, 14, 30"),
        ("archiveRetentionDays", -1, r"'archiveRetentionDays' must be between 0 and 3650"),
        ("maxPendingHours", 0, r"'maxPendingHours' must be between 1 and 72"),
        ("maxPendingHours", 100, r"'maxPendingHours' must be between 1 and 72"),
        ("noncurrentVersionExpirationDays", 0, r"'noncurrentVersionExpirationDays' must be between 1 and 3650"),
        ("tracing", "yes", r"'tracing' must be true or false"),
        ("databricksInstanceProfile", 1, r"'databricksInstanceProfile' must be true or false"),
        ("stackName", "1stack", r"'stackName' must start with a letter"),
        ("stackName", "", r"'stackName' must not be empty"),
        ("stackName", 7, r"'stackName' must be a string"),
        ("artifactRootPrefix", "mlflow/*", r"'artifactRootPrefix' must be a key prefix"),
        ("artifactRootPrefix", "", r"'artifactRootPrefix' must be a key prefix"),
        ("artifactRootPrefix", "models", r"'artifactRootPrefix' must not overlap the plain-upload prefix"),
        ("artifactRootPrefix", "models/mlflow", r"'artifactRootPrefix' must not overlap"),
        ("mlflowTrackingUri", "ftp://mlflow", r"'mlflowTrackingUri' must be an http\(s\) URL"),
        ("mlflowRegistryUri", "not a uri", r"'mlflowRegistryUri' must be an http\(s\) URL"),
        ("mlflowCredentialsSecretArn", "mlflow/creds", r"'mlflowCredentialsSecretArn' must be the full ARN"),
        ("modelNameTag", "", r"'modelNameTag' must not be empty"),
        ("modelNameTag", "has space", r"'modelNameTag' must be an MLflow tag key"),
        ("experimentModelNames", "{not json", r"'experimentModelNames' must be a JSON object"),
        ("experimentModelNames", ["churn"], r"'experimentModelNames' must be an object"),
        ("experimentModelNames", {"12": ""}, r"'experimentModelNames': the model name for experiment '12'"),
        ("experimentModelNames", {"12": 3}, r"'experimentModelNames': the model name for experiment '12'"),
        ("proof", "true", r"'proof' needs 'proofLayerArn'"),
        ("proofIndexUrl", "https://pypi.example.com/simple", r"apply only with 'proof' true"),
        ("proofPythonDownloads", "true", r"'proofPythonDownloads' apply only with 'proof' true"),
        ("proofPythonDownloads", "sometimes", r"'proofPythonDownloads' must be true or false"),
    ],
)
def test_bad_values_raise_an_error_naming_the_key(key: str, value: object, message: str):
    # GIVEN a context with one bad value
    context = {key: value}

    # WHEN it is read
    # THEN a ConfigError names the key and says what is expected
    with pytest.raises(ConfigError, match=message):
        RegistryConfig.from_mapping(context)


@pytest.mark.parametrize(
    ("uri", "secret"),
    [
        ("https://mlflow.example.com", ""),
        ("http://10.0.0.12:5000", ""),
        ("databricks", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:databricks-AbCdEf"),
        ("arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/main", ""),
    ],
)
def test_supported_tracking_uris_are_accepted(uri: str, secret: str):
    # GIVEN a tracking URI of a supported MLflow backend (with the credentials secret it needs)
    # WHEN it is read
    config = RegistryConfig.from_mapping({"mlflowTrackingUri": uri, "mlflowCredentialsSecretArn": secret})

    # THEN it is kept as is
    assert config.mlflow_tracking_uri == uri
