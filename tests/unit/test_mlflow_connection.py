"""The credentials secret → MLflow's variables, per backend; errors that name fields but never values."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest

from functions.adapters.mlflow_connection import (
    CREDENTIAL_VARIABLES,
    CredentialsError,
    RegistryConnection,
    RungConnection,
    apply_client_environment,
    credential_environment,
    parse_credentials,
)
from functions.adapters.mlflow_registry import MlflowRegistry
from functions.adapters.registry_factory import connect_registry, other_registry
from functions.adapters.unity_catalog import UnityCatalogRegistry, from_uc_tag_key, uc_tag_key, uc_tag_value
from functions.domain.errors import Unavailable
from functions.domain.tags import IDENTITY_TAG, REGISTERED_BY_TAG, TAG_STATUS, history_tag, pending_tag
from functions.models.mlflow_backend import Backend, backend_of, is_unity_catalog

SAGEMAKER_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/main"


@pytest.fixture(autouse=True)
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@pytest.mark.parametrize(
    ("uri", "backend"),
    [
        ("https://mlflow.example.com", Backend.SELF_HOSTED),
        ("http://10.0.0.12:5000", Backend.SELF_HOSTED),
        ("databricks", Backend.DATABRICKS),
        (SAGEMAKER_ARN, Backend.SAGEMAKER),
    ],
)
def test_backend_follows_the_tracking_uri(uri: str, backend: Backend):
    # GIVEN a tracking URI
    # WHEN its backend is read
    # THEN it is the one the URI names
    assert backend_of(uri) is backend


@pytest.mark.parametrize(
    ("tracking", "registry", "expected"),
    [
        ("databricks", "", True),  # MLflow's default registry for the databricks tracking URI
        ("databricks", "databricks-uc", True),
        ("databricks", "databricks", False),  # the workspace registry
        ("https://mlflow.example.com", "", False),
    ],
)
def test_unity_catalog_is_the_databricks_default(tracking: str, registry: str, expected: bool):
    # GIVEN tracking and registry URIs
    # WHEN we ask whether versions go to Unity Catalog
    # THEN it follows MLflow's own defaulting
    assert is_unity_catalog(tracking, registry) is expected


def test_basic_auth_and_token_become_mlflow_variables():
    # GIVEN secrets with basic auth and with a bearer token
    password, token = unique("pw"), unique("tok")
    basic = parse_credentials(json.dumps({"username": "registrar", "password": password}))
    bearer = parse_credentials(json.dumps({"token": token}))

    # WHEN they are turned into the self-hosted server's variables
    # THEN MLflow's own variables carry them
    assert credential_environment(Backend.SELF_HOSTED, basic) == {
        "MLFLOW_TRACKING_USERNAME": "registrar",
        "MLFLOW_TRACKING_PASSWORD": password,
    }
    assert credential_environment(Backend.SELF_HOSTED, bearer) == {"MLFLOW_TRACKING_TOKEN": token}
    assert credential_environment(Backend.SELF_HOSTED, None) == {}


def test_databricks_token_and_oauth_become_sdk_variables():
    # GIVEN Databricks secrets: a personal access token, and an OAuth machine-to-machine client
    token, client_secret = unique("dapi"), unique("oauth")
    pat = parse_credentials(json.dumps({"host": "https://dbc-1.cloud.databricks.com/", "token": token}))
    oauth = parse_credentials(
        json.dumps({"host": "https://dbc-1.cloud.databricks.com", "client_id": "sp-1", "client_secret": client_secret})
    )

    # WHEN they are turned into variables for the databricks tracking URI
    # THEN the Databricks SDK's variables carry them (the host without its trailing slash)
    assert credential_environment(Backend.DATABRICKS, pat) == {
        "DATABRICKS_HOST": "https://dbc-1.cloud.databricks.com",
        "DATABRICKS_TOKEN": token,
    }
    assert credential_environment(Backend.DATABRICKS, oauth) == {
        "DATABRICKS_HOST": "https://dbc-1.cloud.databricks.com",
        "DATABRICKS_CLIENT_ID": "sp-1",
        "DATABRICKS_CLIENT_SECRET": client_secret,
    }


@pytest.mark.parametrize(
    ("backend", "secret", "message"),
    [
        (Backend.SELF_HOSTED, {"username": "u"}, r"secret: Value error, username and password go together"),
        (Backend.SELF_HOSTED, {"token": "t", "username": "u", "password": "p"}, r"either username and password"),
        (Backend.SELF_HOSTED, {"host": "https://x", "token": "t"}, r"for the databricks tracking URI only"),
        (Backend.SELF_HOSTED, {"tokne": "t"}, r"tokne: Extra inputs are not permitted"),
        (Backend.DATABRICKS, {"token": "t"}, r"needs a credentials secret with host and token"),
        (Backend.DATABRICKS, {"host": "http://dbc", "token": "t"}, r"host: .*must be an https:// URL"),
        (Backend.DATABRICKS, {"host": "https://dbc"}, r"needs token, or client_id and client_secret"),
        (Backend.DATABRICKS, {"host": "https://dbc", "client_id": "c"}, r"client_id and client_secret go together"),
        (Backend.SAGEMAKER, {"token": "t"}, r"IAM role; the credentials secret must not be set \(it has token\)"),
    ],
)
def test_a_secret_that_does_not_fit_is_refused_without_its_values(backend: Backend, secret: dict, message: str):
    # GIVEN a secret whose values are unique, but whose fields do not fit the backend
    values = {key: f"{value}-{uuid.uuid4().hex}" if key != "host" else value for key, value in secret.items()}

    # WHEN it is parsed and mapped
    # THEN the error says what is wrong, naming fields only
    with pytest.raises(CredentialsError, match=message) as refused:
        credential_environment(backend, parse_credentials(json.dumps(values)))
    for key, value in values.items():
        if key != "host":
            assert value not in str(refused.value)


def test_a_secret_that_is_not_json_is_refused_without_its_text():
    # GIVEN a secret that is a bare password, not a JSON object
    secret = unique("just-a-password")

    # WHEN it is parsed
    # THEN the error says so, and does not quote it
    with pytest.raises(CredentialsError, match=r"secret: not a JSON object") as refused:
        parse_credentials(secret)
    assert secret not in str(refused.value)


def test_applying_a_rotated_secret_leaves_nothing_of_the_old_one():
    # GIVEN a container that applied a basic-auth secret
    apply_client_environment("https://mlflow.example.com", json.dumps({"username": "u", "password": "old"}))

    # WHEN the secret is rotated to a token
    apply_client_environment("https://mlflow.example.com", json.dumps({"token": "new"}))

    # THEN only the token is set, and the fail-fast client settings are in place
    assert {name: os.environ[name] for name in CREDENTIAL_VARIABLES if name in os.environ} == {
        "MLFLOW_TRACKING_TOKEN": "new"
    }
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_tls_verification_is_never_turned_off_by_the_connection():
    # GIVEN no TLS setting in the environment
    os.environ.pop("MLFLOW_TRACKING_INSECURE_TLS", None)

    # WHEN a connection applies its secret
    apply_client_environment("https://mlflow.example.com", json.dumps({"token": "t"}))

    # THEN verification stays on (only the stack's mlflowInsecureTls sets that variable)
    assert "MLFLOW_TRACKING_INSECURE_TLS" not in os.environ


def test_connection_reads_the_secret_once_and_again_after_a_reset():
    # GIVEN a connection whose secret store counts reads
    reads: list[bool] = []

    def read_secret(arn: str, force: bool = False) -> str:
        reads.append(force)
        return json.dumps({"token": "t"})

    connection = RegistryConnection(
        tracking_uri="https://mlflow.example.com", credentials_secret_arn="arn:s", read_secret=read_secret
    )

    # WHEN the client is used twice, then the registry refuses the credentials (reset) and it is used again
    first = connection.client()
    assert connection.client() is first
    connection.reset()
    connection.client()

    # THEN the secret was read on first use (cached by Powertools), then again bypassing the cache
    assert reads == [False, True]


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ('{"username": "u"}', "registry_credentials_invalid"),
        (RuntimeError("AccessDeniedException"), "registry_credentials_unavailable"),
    ],
)
def test_an_unusable_secret_fails_the_record_not_the_container(secret: object, reason: str):
    # GIVEN a secret that does not fit, or cannot be read
    def read_secret(arn: str, force: bool = False) -> str:
        if isinstance(secret, Exception):
            raise secret
        return str(secret)

    registry = connect_registry(
        tracking_uri="https://mlflow.example.com", credentials_secret_arn="arn:s", read_secret=read_secret
    )

    # WHEN the registry is first used (building it did not touch the secret)
    # THEN the call fails as a retryable dependency failure with its own reason
    with pytest.raises(Unavailable, match=r"secret") as failed:
        registry.get_run("0123456789abcdef0123456789abcdef")
    assert failed.value.reason == reason


def test_a_rungs_own_secret_goes_into_its_client_alone_never_into_the_environment():
    # GIVEN the function's own credentials in the environment, and a rung's server with a secret of its own
    apply_client_environment("https://own.example.com", json.dumps({"username": "own", "password": "own-password"}))
    secret = {"username": "prod-user", "password": unique("prod-password")}
    reads: list[str] = []

    def read_secret(arn: str, force: bool = False) -> str:
        reads.append(arn)
        return json.dumps(secret)

    registry = other_registry("https://prod.example.com", "arn:prod-secret", read_secret=read_secret)
    assert reads == []  # read on first use, not when built
    connection = registry._connection
    assert isinstance(connection, RungConnection)

    # WHEN its client is built
    client = connection.client()

    # THEN its registry and tracking stores send the rung's credentials to the rung's server
    for store in (client._get_registry_client().store, client._tracking_client.store):
        creds = store.get_host_creds()
        assert (creds.host, creds.username, creds.password) == ("https://prod.example.com", *secret.values())
        assert creds.token is None
        assert not creds.aws_sigv4
    # AND the environment still holds the function's own credentials, untouched
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("own", "own-password")
    assert reads == ["arn:prod-secret"]


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ('{"host": "https://x.cloud.databricks.com", "token": "t"}', "host, client_id and client_secret are for"),
        ('{"password": "p"}', "username and password go together"),
        ("", "is empty or binary"),
    ],
)
def test_a_rungs_secret_that_does_not_fit_its_server_is_a_retryable_failure(secret: str, message: str):
    # GIVEN a rung's secret that does not fit an MLflow server
    registry = other_registry("https://prod.example.com", "arn:s", read_secret=lambda arn, force=False: secret)
    # WHEN the registry is first used THEN it fails as the functions' own connection does, naming no value
    with pytest.raises(Unavailable, match=message) as failed:
        registry.get_run("0123456789abcdef0123456789abcdef")
    assert failed.value.reason == "registry_credentials_invalid"
    assert "MLFLOW_TRACKING_TOKEN" not in os.environ


@pytest.mark.parametrize(
    ("tracking", "registry", "adapter"),
    [
        ("https://mlflow.example.com", "", MlflowRegistry),
        (SAGEMAKER_ARN, "", MlflowRegistry),
        ("databricks", "databricks", MlflowRegistry),
        ("databricks", "", UnityCatalogRegistry),
        ("databricks", "databricks-uc", UnityCatalogRegistry),
    ],
)
def test_unity_catalog_gets_its_own_adapter(tracking: str, registry: str, adapter: type):
    # GIVEN tracking and registry URIs
    # WHEN the registry adapter is built
    built = connect_registry(tracking_uri=tracking, registry_uri=registry)

    # THEN Unity Catalog gets the adapter that searches by name and finds versions by identity; others the plain one
    assert type(built) is adapter
    assert built.requirements.three_level_names is (adapter is UnityCatalogRegistry)


def test_unity_catalog_tag_keys_round_trip_and_long_identities_become_digests():
    # GIVEN the tag keys the routes write, and an identity longer than UC's 1,000 characters
    keys = [IDENTITY_TAG, REGISTERED_BY_TAG, TAG_STATUS, history_tag("champion"), pending_tag("champion")]
    identity = "s3://bucket/" + "k" * 1100 + "#v1"

    # WHEN they are written as UC stores them and read back
    written = [uc_tag_key(key) for key in keys]

    # THEN UC sees no dots, the domain gets its keys back unchanged, and the identity is a stable digest
    assert not any("." in key for key in written)
    assert [from_uc_tag_key(key) for key in written] == keys
    digest = uc_tag_value(IDENTITY_TAG, identity)
    assert digest == uc_tag_value(IDENTITY_TAG, identity)
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    assert uc_tag_value(history_tag("champion"), "x" * 5000) == "x" * 5000
