"""The deployment's settings, read from CDK context once and validated in one place.

Every key has a default (also written in `cdk.json`, which a test keeps in step with this file) and can be
overridden on the command line, for example `npx cdk deploy -c mlflowTrackingUri=https://mlflow.example.com`.
The CLI passes `-c` values as strings, so numbers, booleans and objects are also accepted in their string form
(`-c registerMaxConcurrency=10`, `-c tracing=true`, `-c experimentModelNames='{"12": "churn"}'`).
A wrong value stops the synth with a `ConfigError` that names the key.

The MLflow keys are checked together too (`_check_mlflow`): a Databricks tracking URI needs a credentials secret,
SageMaker needs none, SigV4 needs the API's execute-api ARN, and so on; docs/deploying.md has a worked example per backend.

`mlflowTrackingUri` is the one value a real deployment must provide. It defaults to empty so that a fresh checkout
synthesizes (tests, `cdk synth`, reviews of the template); the functions then get `PLACEHOLDER_TRACKING_URI` and
the stack adds a synth warning. `cdk deploy --strict` (and `cdk synth --strict`) fail on that warning, so a
deployment cannot silently ship the placeholder.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from functions.domain.tags import DEFAULT_MODEL_NAME_TAG
from functions.models.mlflow_backend import (
    SAGEMAKER_MLFLOW_APP,
    SAGEMAKER_TRACKING_SERVER,
    Backend,
    backend_of,
    is_unity_catalog,
)
from functions.routing import DEFAULT_ARTIFACT_ROOT_PREFIX, PLAIN_UPLOAD_PREFIX
from stacks.constants import project_path
from stacks.regions import FUNCTION_URL_REGIONS, SNAP_START_REGIONS

if TYPE_CHECKING:
    from constructs import Node

PLACEHOLDER_TRACKING_URI = "https://mlflow.example.invalid"
"""Used when `mlflowTrackingUri` is empty, so that synth and tests work; the stack then warns (see docs/deploying.md)."""

# fmt: off
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
# fmt: on
"""The retention periods CloudWatch Logs accepts."""

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,99}$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
# A key ARN, not an alias: an IAM statement on an alias ARN does not cover the key's use (KMS developer guide,
# "Using aliases to control access to KMS keys").
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_URI = re.compile(r"^(https?://\S+|databricks(-uc)?(://\S*)?|arn:aws[a-z-]*:sagemaker:\S+)$")
_EXECUTE_API_ARN = re.compile(r"^arn:aws[a-z-]*:execute-api:[a-z0-9-]+:\d{12}:[A-Za-z0-9]+/[A-Za-z0-9_*/.$-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_ACCOUNT = re.compile(r"^\d{12}$")
_LAYER_VERSION_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]{1,140}:\d+$")
_HTTPS_URL = re.compile(r"^https://[^\s\"']+$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")

# Unity Catalog downloads every model into the function and uploads it again (see docs/deploying.md): when the two keys
# below are left at 0, a Unity Catalog registry gets these, any other registry the route's own settings.
UNITY_CATALOG_REGISTER_TIMEOUT_SECONDS = 900
UNITY_CATALOG_REGISTER_EPHEMERAL_STORAGE_MB = 4096
DEFAULT_EPHEMERAL_STORAGE_MB = 512
UNITY_CATALOG_REGISTER_MEMORY_MB = 1024
"""The routes' 512 MB come from measurements without the Unity Catalog copy (no workspace here to measure one), so a
Unity Catalog register function keeps the earlier 1,024 MB."""


class ConfigError(ValueError):
    """A context value is missing its type or range; the message names the context key."""


class SnapStart(enum.Enum):
    """What the functions get: SnapStart, none, or SnapStart where the deployment's region has it (a condition)."""

    ON = "on"
    OFF = "off"
    WHERE_AVAILABLE = "where available"


@dataclass(frozen=True)
class RegistryConfig:
    """Everything the stack can be told from outside, with the defaults a fresh checkout deploys."""

    stack_name: str = "RegistryAutopilot"
    alarm_email: str = ""
    artifact_root_prefix: str = DEFAULT_ARTIFACT_ROOT_PREFIX
    archive_retention_days: int = 30
    log_retention_days: int = 30
    register_max_concurrency: int = 5
    mlflow_tracking_uri: str = ""
    mlflow_registry_uri: str = ""
    mlflow_credentials_secret_arn: str = ""
    mlflow_credentials_kms_key_arn: str = ""
    model_name_tag: str = DEFAULT_MODEL_NAME_TAG
    experiment_model_names: Mapping[str, str] = field(default_factory=dict)
    max_pending_hours: int = 6
    noncurrent_version_expiration_days: int = 90
    databricks_instance_profile: bool = False
    tracing: bool = False
    snap_start: str = "auto"
    """"auto" (on wherever SnapStart exists), "true" (on; refused where it does not exist) or "false"."""
    mlflow_sig_v4: bool = False
    mlflow_execute_api_arn: str = ""
    mlflow_insecure_tls: bool = False
    mlflow_ca_bundle: str = ""
    vpc_subnet_ids: Sequence[str] = field(default_factory=list)
    vpc_security_group_ids: Sequence[str] = field(default_factory=list)
    register_timeout_seconds: int = 0
    register_ephemeral_storage_mb: int = 0
    webhooks: bool = False
    webhook_reserved_concurrency: int = 0
    recorder: bool = False
    region: str = ""
    """Empty: environment-agnostic (the region comes from the credentials at deploy time)."""
    artifact_bucket_name: str = ""
    """An existing bucket in this account to use instead of creating one (docs/deploying.md, "Bring your own
    bucket"); the stack never owns it. Empty: the stack creates and owns its bucket and key."""
    artifact_bucket_key_arn: str = ""
    """The KMS key of `artifact_bucket_name`'s SSE-KMS encryption (empty: SSE-S3, no key to grant)."""
    artifact_bucket_event_bridge: str = "require"
    """`require`: the existing bucket must already send its events to EventBridge (the stack writes nothing on it);
    `enable`: the stack turns that setting on, keeping every other notification (stacks/constructs/artifact_bucket.py)."""
    artifact_bucket_account: str = ""
    """The account `artifact_bucket_name` is in, when it is not the stack's (docs/deploying.md, "Bucket in another
    account"): the register rule then listens on the project bus, where that account's forwarder stack
    (`stacks.forwarder_stack`) delivers the bucket's events. Empty: the bucket is in the stack's own account."""
    proof: bool = False
    """Whether the validate function proves models whose policy says `proof: smoke` (docs/policies-and-aliases.md,
    "Proving a model"): it is then sized for proofs (`functions.routing.proving`) and runs them with uv. Off by
    default: the proof's build stage needs numpy, pandas and uv beside the bundle, which this project does not
    build or measure yet, so `proofLayerArn` must name a layer that has them."""
    proof_layer_arn: str = ""
    """A Lambda layer (arm64, Python 3.14) with numpy, pandas and uv under python/, added to the validate function."""
    proof_index_url: str = ""
    """The package index the proofs build environments from (a PyPI mirror, CodeArtifact); empty: PyPI."""
    proof_python_downloads: bool = False
    """Whether uv may download the Python a model declares when the function has no interpreter of that minor version
    (a model trained on 3.11, a function on 3.14): off, such a model fails with `python_unavailable`. On, uv fetches
    a CPython build from python-build-standalone (GitHub), so the function needs a route to it."""
    account: str = ""
    """The stack's account (its env). Empty: the account comes from the credentials at deploy time; with
    `artifact_bucket_account` the app needs it (or CDK_DEFAULT_ACCOUNT) to name the project bus for the forwarder."""

    @property
    def imports_bucket(self) -> bool:
        """The artifact bucket exists already (`artifactBucketName`): imported, never owned."""
        return bool(self.artifact_bucket_name)

    @property
    def bucket_in_another_account(self) -> bool:
        """The existing bucket is in another account (`artifactBucketAccount`): its events come forwarded."""
        return bool(self.artifact_bucket_account)

    @property
    def uses_placeholder_tracking_uri(self) -> bool:
        return not self.mlflow_tracking_uri

    @property
    def effective_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or PLACEHOLDER_TRACKING_URI

    @property
    def max_pending_seconds(self) -> int:
        return self.max_pending_hours * 3600

    @property
    def backend(self) -> Backend:
        return backend_of(self.mlflow_tracking_uri)

    @property
    def unity_catalog(self) -> bool:
        return bool(self.mlflow_tracking_uri) and is_unity_catalog(self.mlflow_tracking_uri, self.mlflow_registry_uri)

    @property
    def sagemaker_tracking_server_arn(self) -> str:
        """The tracking server the functions' role may call (empty unless the backend is SageMaker)."""
        return self.mlflow_tracking_uri if self.backend is Backend.SAGEMAKER else ""

    @property
    def effective_register_timeout_seconds(self) -> int | None:
        """None: the route's own timeout (`functions.routing.REGISTER`)."""
        if self.register_timeout_seconds:
            return self.register_timeout_seconds
        return UNITY_CATALOG_REGISTER_TIMEOUT_SECONDS if self.unity_catalog else None

    @property
    def effective_register_memory_mb(self) -> int | None:
        """None: the route's own memory (`functions.routing.REGISTER`)."""
        return UNITY_CATALOG_REGISTER_MEMORY_MB if self.unity_catalog else None

    @property
    def snap_start_mode(self) -> SnapStart:
        """SnapStart for the functions: decided here when the region is known, by a template condition otherwise."""
        if self.snap_start == "false":
            return SnapStart.OFF
        if self.snap_start == "true" or self.region:
            return SnapStart.ON if self.snap_start == "true" or self.region in SNAP_START_REGIONS else SnapStart.OFF
        return SnapStart.WHERE_AVAILABLE

    @property
    def webhooks_where_available(self) -> bool:
        """Webhooks in a stack without a region: their resources carry a condition on function URLs' regions."""
        return self.webhooks and not self.region

    @property
    def effective_register_ephemeral_storage_mb(self) -> int:
        if self.register_ephemeral_storage_mb:
            return self.register_ephemeral_storage_mb
        return UNITY_CATALOG_REGISTER_EPHEMERAL_STORAGE_MB if self.unity_catalog else DEFAULT_EPHEMERAL_STORAGE_MB

    def __post_init__(self) -> None:
        """Every value checked as `from_mapping` checks context: a `RegistryConfig` built in code (the construct's
        props) with a bad value raises ConfigError naming the prop. Values are normalized the same way (stripped
        strings, lists, `snap_start` as "true"/"false"/"auto")."""
        for attribute in CONTEXT_KEYS:
            name = _setting_name(attribute, from_context=False)
            object.__setattr__(self, attribute, _PARSERS[attribute](name, getattr(self, attribute)))
        _check_mlflow(self)
        _check_region(self)
        _check_artifact_bucket(self)
        _check_proof(self)

    @classmethod
    def from_node(cls, node: Node) -> RegistryConfig:
        """Read every key from the construct tree's context (`app.node`), falling back to the defaults."""
        return cls.from_mapping({key: node.try_get_context(key) for key in CONTEXT_KEYS.values()})

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> RegistryConfig:
        """Validate raw context values (None means 'not set'); raises ConfigError naming the first bad key."""
        values: dict[str, Any] = {}
        for attribute, key in CONTEXT_KEYS.items():
            raw = context.get(key)
            if raw is not None:
                values[attribute] = _PARSERS[attribute](_setting_name(attribute, from_context=True), raw)
        return cls(**values)  # the keys checked together: `__post_init__`


def context_key(attribute: str) -> str:
    """`artifact_root_prefix` -> `artifactRootPrefix`."""
    head, *rest = attribute.split("_")
    return head + "".join(part.capitalize() for part in rest)


CONTEXT_KEYS: dict[str, str] = {f.name: context_key(f.name) for f in fields(RegistryConfig)}
"""Dataclass attribute -> context key (camelCase)."""

BUCKET_ACCOUNT_CONTEXT_KEY = CONTEXT_KEYS["artifact_bucket_account"]
"""`artifactBucketAccount`: with it set, the app adds the forwarder stack for that account (docs/deploying.md)."""


# --- parsers: one per attribute, each (key, raw value) -> parsed value or ConfigError -----------------------------
# `key` is the setting's name as its source spells it: "context key 'registerMaxConcurrency'" for context, the
# prop's name and its context key for a `RegistryConfig` built in code (`_setting_name`).


def _setting_name(attribute: str, *, from_context: bool) -> str:
    key = CONTEXT_KEYS[attribute]
    return f"context key {key!r}" if from_context else f"prop {attribute!r} (context key {key!r})"


def _integer(minimum: int, maximum: int, allowed: tuple[int, ...] = ()) -> Callable[[str, Any], int]:
    def parse(key: str, raw: Any) -> int:
        if isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ConfigError(f"{key} must be an integer, got {raw!r}")
        if allowed and raw not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, allowed))}; got {raw}")
        if not minimum <= raw <= maximum:
            raise ConfigError(f"{key} must be between {minimum} and {maximum}; got {raw}")
        return raw

    return parse


def _boolean(key: str, raw: Any) -> bool:
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    if not isinstance(raw, bool):
        raise ConfigError(f"{key} must be true or false, got {raw!r}")
    return raw


def _string(pattern: re.Pattern[str] | None = None, *, allow_empty: bool, hint: str = "") -> Callable[[str, Any], str]:
    def parse(key: str, raw: Any) -> str:
        if not isinstance(raw, str):
            raise ConfigError(f"{key} must be a string, got {raw!r}")
        value = raw.strip()
        if not value:
            if allow_empty:
                return ""
            raise ConfigError(f"{key} must not be empty")
        if pattern is not None and not pattern.fullmatch(value):
            raise ConfigError(f"{key} {hint or f'must match {pattern.pattern}'}; got {value!r}")
        return value

    return parse


def _artifact_root_prefix(key: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"{key} must be a string, got {raw!r}")
    value = raw.strip().strip("/")
    if not _PREFIX.fullmatch(value):
        raise ConfigError(
            f"{key} must be a key prefix such as 'mlflow' or 'teams/mlflow' (letters, digits, '.', '_', "
            f"'-', separated by '/'; no wildcards); got {raw!r}"
        )
    if value == PLAIN_UPLOAD_PREFIX or value.startswith(f"{PLAIN_UPLOAD_PREFIX}/"):
        raise ConfigError(f"{key} must not overlap the plain-upload prefix {PLAIN_UPLOAD_PREFIX!r}")
    return value


def _experiment_model_names(key: str, raw: Any) -> dict[str, str]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{key} must be a JSON object of experiment id -> model name: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key} must be an object of experiment id -> model name, got {raw!r}")
    for experiment_id, model_name in raw.items():
        if not isinstance(experiment_id, str) or not experiment_id.strip():
            raise ConfigError(f"{key}: experiment ids must be non-empty strings, got {experiment_id!r}")
        if not isinstance(model_name, str) or not model_name.strip():
            raise ConfigError(
                f"{key}: the model name for experiment {experiment_id!r} must be a non-empty string, got {model_name!r}"
            )
    return dict(raw)


def _id_list(pattern: re.Pattern[str], what: str) -> Callable[[str, Any], list[str]]:
    def parse(key: str, raw: Any) -> list[str]:
        if isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if isinstance(raw, tuple):
            raw = list(raw)
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise ConfigError(f"{key} must be a list of {what} (or a comma-separated string), got {raw!r}")
        bad = [item for item in raw if not pattern.fullmatch(item)]
        if bad:
            raise ConfigError(f"{key} holds values that are not {what}: {', '.join(bad)}")
        return list(dict.fromkeys(raw))

    return parse


def _ca_bundle(key: str, raw: Any) -> str:
    value = _string(allow_empty=True)(key, raw)
    if not value:
        return ""
    path = project_path(value)
    if not path.is_file():
        raise ConfigError(f"{key} must name a PEM file (relative to the project root); {value!r} is none")
    if b"-----BEGIN CERTIFICATE-----" not in path.read_bytes()[:1_000_000]:
        raise ConfigError(f"{key}: {value!r} holds no PEM certificate")
    return value


def _snap_start(key: str, raw: Any) -> str:
    value = raw if isinstance(raw, bool) else raw.strip().lower() if isinstance(raw, str) else None
    if value in (True, False):
        return str(value).lower()
    if value not in ("auto", "true", "false"):
        raise ConfigError(f"{key} must be true, false or auto, got {raw!r}")
    return value


def _bucket_name(key: str, raw: Any) -> str:
    """S3's general purpose bucket naming rules (S3 user guide, "General purpose bucket naming rules")."""
    value = _string(allow_empty=True)(key, raw)
    if not value:
        return ""
    problem = (
        "must be 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
        if not _BUCKET_NAME.fullmatch(value)
        else "must not hold two adjacent periods"
        if ".." in value
        else "must not be formatted as an IP address"
        if _IP_ADDRESS.fullmatch(value)
        else f"must not start with {next(p for p in _RESERVED_BUCKET_PREFIXES if value.startswith(p))!r} (reserved)"
        if value.startswith(_RESERVED_BUCKET_PREFIXES)
        else f"must not end with {next(s for s in _RESERVED_BUCKET_SUFFIXES if value.endswith(s))!r} (reserved)"
        if value.endswith(_RESERVED_BUCKET_SUFFIXES)
        else ""
    )
    if problem:
        raise ConfigError(f"{key} is not an S3 bucket name: it {problem}; got {value!r}")
    return value


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def parse(key: str, raw: Any) -> str:
        value = raw.strip().lower() if isinstance(raw, str) else raw
        if value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {raw!r}")
        return str(value)

    return parse


def _check_proof(config: RegistryConfig) -> None:
    if config.proof and not config.proof_layer_arn:
        raise ConfigError(
            f"context key {CONTEXT_KEYS['proof']!r} needs {CONTEXT_KEYS['proof_layer_arn']!r}: a layer with numpy, "
            "pandas and uv for the proof's build stage (the stack does not bundle them; docs/deploying.md)"
        )
    if not config.proof and (config.proof_layer_arn or config.proof_index_url or config.proof_python_downloads):
        keys = ", ".join(repr(CONTEXT_KEYS[name]) for name in ("proof_layer_arn", "proof_index_url"))
        raise ConfigError(
            f"context keys {keys} and {CONTEXT_KEYS['proof_python_downloads']!r} apply only "
            f"with {CONTEXT_KEYS['proof']!r} true"
        )


def _check_artifact_bucket(config: RegistryConfig) -> None:
    """The keys of an existing bucket only make sense with the bucket, and the key with the stack's own partition."""
    if not config.imports_bucket:
        for key, is_set in (
            ("artifactBucketKeyArn", bool(config.artifact_bucket_key_arn)),
            ("artifactBucketEventBridge", config.artifact_bucket_event_bridge != "require"),
            (BUCKET_ACCOUNT_CONTEXT_KEY, bool(config.artifact_bucket_account)),
        ):
            if is_set:
                raise ConfigError(
                    f"context key {key!r} applies to an existing bucket: set artifactBucketName too (without it the "
                    "stack creates its own bucket and key)"
                )
        return
    key_region = config.artifact_bucket_key_arn.split(":")[3] if config.artifact_bucket_key_arn else ""
    if key_region and config.region and key_region != config.region:
        raise ConfigError(
            f"context key 'artifactBucketKeyArn': the key is in {key_region}, the stack in {config.region}; S3 "
            "encrypts a bucket's objects with a key of the bucket's own region only"
        )
    check_bucket_account(config, config.account)


def check_bucket_account(config: RegistryConfig, stack_account: str) -> None:
    """A bucket "in another account" must be in another account than the stack's, when that one is known."""
    if config.artifact_bucket_account and config.artifact_bucket_account == stack_account:
        raise ConfigError(
            f"context key {BUCKET_ACCOUNT_CONTEXT_KEY!r} is the stack's own account ({stack_account}): a bucket in "
            "the stack's account needs no forwarder; leave the key empty"
        )


def bind_account(config: RegistryConfig, default_account: str | None) -> RegistryConfig:
    """The config of an app whose bucket is in another account: the project bus needs a concrete ARN (the forwarder
    stack in the bucket's account names it), so `region` and the stack's account (context `account`, else the
    CDK CLI's default account, `default_account`) must be known; ConfigError otherwise."""
    if not config.bucket_in_another_account:
        return config
    account = config.account or (default_account or "").strip()
    missing = [key for key, value in (("region", config.region), ("account", account)) if not value]
    if missing:
        raise ConfigError(
            f"context key {BUCKET_ACCOUNT_CONTEXT_KEY!r} needs the project stack's {' and '.join(missing)}: the "
            "forwarder in the bucket's account sends to the project bus by its ARN. Set "
            + " ".join(f"-c {key}=<{key}>" for key in missing)
            + (" (or deploy with credentials, which give CDK_DEFAULT_ACCOUNT)" if "account" in missing else "")
        )
    return replace(config, account=account)


def _check_region(config: RegistryConfig) -> None:
    """The features that exist in some regions only (`stacks.regions`), against the `region` key."""
    region = config.region
    if config.snap_start == "true" and not region:
        raise ConfigError(
            "context key 'snapStart': true needs the deployment's region in 'region' (SnapStart is not available in "
            "every region); leave snapStart at auto to have it wherever the stack is deployed and SnapStart exists"
        )
    if config.snap_start == "true" and region not in SNAP_START_REGIONS:
        raise ConfigError(
            f"context key 'snapStart': Lambda SnapStart is not available in {region}; set snapStart=auto or false"
        )
    if config.webhooks and region and region not in FUNCTION_URL_REGIONS:
        raise ConfigError(
            f"context key 'webhooks': Lambda function URLs (AWS::Lambda::Url) are not available in {region}, so the "
            "webhook endpoint cannot be created there; set webhooks=false"
        )


def _check_mlflow(config: RegistryConfig) -> None:
    """The MLflow keys that only make sense together; raises ConfigError naming the keys."""
    uri, registry, secret = config.mlflow_tracking_uri, config.mlflow_registry_uri, config.mlflow_credentials_secret_arn
    backend = config.backend
    for key, value in (("mlflowTrackingUri", uri), ("mlflowRegistryUri", registry)):
        if value.startswith(("databricks://", "databricks-uc://")):
            raise ConfigError(
                f"context key {key!r}: Databricks profiles ({value!r}) need a config file the functions do not have; "
                "use 'databricks' (or 'databricks-uc') and put host and token in mlflowCredentialsSecretArn"
            )
    if uri and backend is Backend.SAGEMAKER:
        if SAGEMAKER_MLFLOW_APP.fullmatch(uri):
            raise ConfigError(
                "context key 'mlflowTrackingUri': SageMaker MLflow Apps (mlflow-app/...) are not supported yet (the IAM "
                "actions they need could not be verified); use a tracking server ARN (mlflow-tracking-server/...)"
            )
        if not SAGEMAKER_TRACKING_SERVER.fullmatch(uri):
            raise ConfigError(
                "context key 'mlflowTrackingUri' must be a SageMaker tracking server ARN "
                f"(arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>); got {uri!r}"
            )
        if secret:
            raise ConfigError(
                "context key 'mlflowCredentialsSecretArn' must be empty for SageMaker: the functions' role signs requests"
            )
    if backend is Backend.DATABRICKS and uri and not secret:
        raise ConfigError(
            "context key 'mlflowCredentialsSecretArn' is required with the databricks tracking URI (a secret holding "
            "host and token, or host, client_id and client_secret)"
        )
    if registry.startswith("databricks") and backend is not Backend.DATABRICKS:
        raise ConfigError("context key 'mlflowRegistryUri': a Databricks registry needs mlflowTrackingUri=databricks")
    if registry.startswith("arn:") and registry != uri:
        raise ConfigError("context key 'mlflowRegistryUri': a SageMaker registry must be the tracking server itself")
    if config.mlflow_sig_v4 != bool(config.mlflow_execute_api_arn):
        raise ConfigError(
            "context keys 'mlflowSigV4' and 'mlflowExecuteApiArn' go together: SigV4-signed requests need the "
            "execute-api ARN the functions may invoke (and the ARN is only used for SigV4)"
        )
    self_hosted_only = {
        "mlflowSigV4": config.mlflow_sig_v4,
        "mlflowInsecureTls": config.mlflow_insecure_tls,
        "mlflowCaBundle": bool(config.mlflow_ca_bundle),
    }
    for key, is_set in self_hosted_only.items():
        if is_set and backend is not Backend.SELF_HOSTED:
            raise ConfigError(f"context key {key!r} applies to a self-hosted MLflow server (an https:// tracking URI)")
    if config.mlflow_insecure_tls and config.mlflow_ca_bundle:
        raise ConfigError("context keys 'mlflowInsecureTls' and 'mlflowCaBundle' exclude each other")
    key = config.mlflow_credentials_kms_key_arn
    if key and not secret:
        raise ConfigError(
            "context key 'mlflowCredentialsKmsKeyArn' needs 'mlflowCredentialsSecretArn' (the secret it encrypts)"
        )
    # Secrets Manager encrypts a secret only with a key in the secret's own region (and partition).
    if key and key.split(":")[1:4:2] != secret.split(":")[1:4:2]:
        raise ConfigError(
            "context keys 'mlflowCredentialsKmsKeyArn' and 'mlflowCredentialsSecretArn' must be in the same region: "
            "Secrets Manager uses keys of the secret's region only"
        )
    if config.webhook_reserved_concurrency and not config.webhooks:
        raise ConfigError("context key 'webhookReservedConcurrency' applies to the webhook function: set webhooks=true")
    if bool(config.vpc_subnet_ids) != bool(config.vpc_security_group_ids):
        raise ConfigError("context keys 'vpcSubnetIds' and 'vpcSecurityGroupIds' go together (both or neither)")


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "stack_name": _string(
        _STACK_NAME,
        allow_empty=False,
        hint="must start with a letter and hold only letters, digits and '-' (at most 100)",
    ),
    # Subscribed to the alarm topic (SNS asks the address to confirm); empty: subscribe to `AlarmTopicArn` yourself.
    # One address (a distribution list for several): no spaces, commas or angle brackets, and a dot in the domain.
    "alarm_email": _string(
        re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"),
        allow_empty=True,
        hint="must be one e-mail address such as oncall@example.com",
    ),
    "artifact_root_prefix": _artifact_root_prefix,
    # 0 keeps archived events forever (EventBridge's own meaning of RetentionDays=0).
    "archive_retention_days": _integer(0, 3650),
    "log_retention_days": _integer(1, 3653, LOG_RETENTION_DAYS),
    # The event source mapping's maximum concurrency: at least 2 (Lambda's floor); it protects the MLflow server.
    "register_max_concurrency": _integer(2, 1000),
    "mlflow_tracking_uri": _string(
        _URI, allow_empty=True, hint="must be an http(s) URL, 'databricks' or a SageMaker MLflow ARN"
    ),
    "mlflow_registry_uri": _string(
        _URI, allow_empty=True, hint="must be an http(s) URL, 'databricks-uc' or a SageMaker MLflow ARN"
    ),
    "mlflow_credentials_secret_arn": _string(
        _SECRET_ARN, allow_empty=True, hint="must be the full ARN of a Secrets Manager secret"
    ),
    # The customer managed key the credentials secret is encrypted with (empty: the secret uses aws/secretsmanager).
    "mlflow_credentials_kms_key_arn": _string(
        _KMS_KEY_ARN, allow_empty=True, hint="must be the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<id>)"
    ),
    "model_name_tag": _string(
        re.compile(r"^[\w.:/-]{1,250}$"),
        allow_empty=False,
        hint="must be an MLflow tag key (letters, digits, '_', '.', ':', '/', '-')",
    ),
    "experiment_model_names": _experiment_model_names,
    # Incomplete uploads are retried for at most this long; it must stay well inside the queue's 4-day retention.
    "max_pending_hours": _integer(1, 72),
    "noncurrent_version_expiration_days": _integer(1, 3650),
    "databricks_instance_profile": _boolean,
    "tracing": _boolean,
    "snap_start": _snap_start,
    "mlflow_sig_v4": _boolean,
    "mlflow_execute_api_arn": _string(
        _EXECUTE_API_ARN,
        allow_empty=True,
        hint="must be an execute-api ARN (arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<method>/<path>)",
    ),
    "mlflow_insecure_tls": _boolean,
    "mlflow_ca_bundle": _ca_bundle,
    "vpc_subnet_ids": _id_list(_SUBNET_ID, "subnet ids (subnet-...)"),
    "vpc_security_group_ids": _id_list(_SECURITY_GROUP_ID, "security group ids (sg-...)"),
    # 0 = automatic (the route's 60 s, or 900 s for Unity Catalog); Lambda allows up to 900 s.
    "register_timeout_seconds": _integer(0, 900),
    # 0 = automatic (512 MB, or 4096 MB for Unity Catalog); Lambda allows 512 to 10240 MB.
    "register_ephemeral_storage_mb": _integer(0, 10240),
    "webhooks": _boolean,
    # 0 = unreserved. Lambda keeps at least 100 executions of the account unreserved (PutFunctionConcurrency), so a
    # reservation of N needs an account concurrency quota of N + 100 or more; new accounts may have 10 in all.
    "webhook_reserved_concurrency": _integer(0, 1000),
    # Off by default: the recorder's log group policy is one of the 10 CloudWatch Logs resource policies an account
    # may have per region (see stacks/constructs/recorder.py).
    "recorder": _boolean,
    # An explicit region (the stack's env): the synth then checks the region-bound features (stacks/regions.py).
    "region": _string(_REGION, allow_empty=True, hint="must be an AWS region such as eu-west-1"),
    "artifact_bucket_name": _bucket_name,
    # A key ARN, not an alias: the grants name the key, and an alias ARN in a policy does not cover the key's use.
    "artifact_bucket_key_arn": _string(
        _KMS_KEY_ARN, allow_empty=True, hint="must be the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<id>)"
    ),
    "artifact_bucket_event_bridge": _choice("require", "enable"),
    "artifact_bucket_account": _string(_ACCOUNT, allow_empty=True, hint="must be a 12-digit AWS account id"),
    "account": _string(_ACCOUNT, allow_empty=True, hint="must be a 12-digit AWS account id"),
    "proof": _boolean,
    "proof_layer_arn": _string(
        _LAYER_VERSION_ARN,
        allow_empty=True,
        hint="must be a layer version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<version>)",
    ),
    "proof_index_url": _string(_HTTPS_URL, allow_empty=True, hint="must be an https:// URL of a package index"),
    "proof_python_downloads": _boolean,
}
