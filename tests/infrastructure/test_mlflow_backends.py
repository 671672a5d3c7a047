"""One stack, four backends: the context keys, what each backend gets (permissions, layers, environment, network,
sizing), what cannot work refused at synth, and the webhook endpoint. Every synth here passes both cdk-nag packs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack

from functions.routing import REGISTER
from functions.settings import webhook_function_environment
from stacks.autopilot import RegistryAutopilot
from stacks.config import ConfigError, RegistryConfig
from stacks.constants import POLICIES_DIR
from stacks.constructs.mlflow_access import (
    CA_BUNDLE_MOUNT,
    SAGEMAKER_MLFLOW_ACTIONS,
    SAGEMAKER_MLFLOW_REGISTER_ACTIONS,
)
from tests.infrastructure.conftest import (
    REPO_ROOT,
    SECRET_ARN,
    SECURITY_GROUP_IDS,
    SUBNET_IDS,
    Synth,
    cdk_json_context,
    synthesize,
)
from tests.infrastructure.template_queries import role_statements

SAGEMAKER_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/main"
EXECUTE_API_ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/*/*"
PEM = """-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUZGVtby1jYS1mb3ItdGVzdHMtb25seTAKBggqhkjOPQQDAjAS
-----END CERTIFICATE-----
"""


@pytest.fixture(scope="module")
def ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "mlflow-ca.pem"
    path.write_text(PEM)
    return path


@pytest.fixture(scope="module")
def sagemaker_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize({"mlflowTrackingUri": SAGEMAKER_ARN}, outdir=tmp_path_factory.mktemp("sagemaker-cdk.out"))


@pytest.fixture(scope="module")
def private_server_synth(tmp_path_factory: pytest.TempPathFactory, ca_bundle: Path) -> Synth:
    """A self-hosted server behind API Gateway with IAM auth, and a certificate from a private CA."""
    context = {
        "mlflowTrackingUri": "https://mlflow.internal.example.com",
        "mlflowCredentialsSecretArn": SECRET_ARN,
        "mlflowSigV4": "true",
        "mlflowExecuteApiArn": EXECUTE_API_ARN,
        "mlflowCaBundle": str(ca_bundle),
    }
    return synthesize(context, outdir=tmp_path_factory.mktemp("private-cdk.out"))


@pytest.fixture(scope="module")
def insecure_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context = {"mlflowTrackingUri": "https://mlflow.internal.example.com", "mlflowInsecureTls": "true"}
    return synthesize(context, outdir=tmp_path_factory.mktemp("insecure-cdk.out"))


def _properties(synth: Synth, construct: Any) -> dict[str, Any]:
    return synth.template_json["Resources"][synth.logical_id(construct)]["Properties"]


def _by_sid(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {statement.get("Sid", ""): statement for statement in statements}


# --- context keys ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"mlflowTrackingUri": "databricks"}, r"'mlflowCredentialsSecretArn' is required with the databricks"),
        ({"mlflowTrackingUri": "databricks://prod", "mlflowCredentialsSecretArn": SECRET_ARN}, r"profiles"),
        (
            {"mlflowTrackingUri": "https://m.example.com", "mlflowRegistryUri": "databricks-uc"},
            r"needs mlflowTrackingUri=databricks",
        ),
        (
            {"mlflowTrackingUri": SAGEMAKER_ARN, "mlflowCredentialsSecretArn": SECRET_ARN},
            r"must be empty for SageMaker",
        ),
        (
            {"mlflowTrackingUri": "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-app/app-1"},
            r"MLflow Apps .* not supported",
        ),
        ({"mlflowTrackingUri": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/x"}, r"tracking server ARN"),
        (
            {"mlflowTrackingUri": "https://m.example.com", "mlflowSigV4": "true"},
            r"'mlflowSigV4' and 'mlflowExecuteApiArn' go together",
        ),
        ({"mlflowTrackingUri": "https://m.example.com", "mlflowExecuteApiArn": EXECUTE_API_ARN}, r"go together"),
        ({"mlflowExecuteApiArn": "arn:aws:lambda:eu-west-1:123456789012:function:x"}, r"must be an execute-api ARN"),
        (
            {"mlflowTrackingUri": SAGEMAKER_ARN, "mlflowInsecureTls": "true"},
            r"'mlflowInsecureTls' applies to a self-hosted",
        ),
        ({"mlflowTrackingUri": "https://m.example.com", "mlflowCaBundle": "nowhere/ca.pem"}, r"must name a PEM file"),
        ({"vpcSubnetIds": "subnet-0123456789abcdef0"}, r"'vpcSubnetIds' and 'vpcSecurityGroupIds' go together"),
        ({"vpcSubnetIds": "subnet-xyz", "vpcSecurityGroupIds": "sg-0123456789abcdef0"}, r"not subnet ids .*subnet-xyz"),
        ({"vpcSecurityGroupIds": [7]}, r"'vpcSecurityGroupIds' must be a list of security group ids"),
        ({"registerTimeoutSeconds": "901"}, r"'registerTimeoutSeconds' must be between 0 and 900"),
        ({"registerEphemeralStorageMb": "20000"}, r"'registerEphemeralStorageMb' must be between 0 and 10240"),
        ({"webhooks": "yes"}, r"'webhooks' must be true or false"),
        ({"webhookReservedConcurrency": "5"}, r"'webhookReservedConcurrency' applies to the webhook function"),
        ({"webhooks": "true", "webhookReservedConcurrency": "-1"}, r"'webhookReservedConcurrency' must be between 0"),
        (
            {"mlflowCredentialsKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab"},
            r"'mlflowCredentialsKmsKeyArn' needs 'mlflowCredentialsSecretArn'",
        ),
        (
            {
                "mlflowCredentialsSecretArn": SECRET_ARN,
                "mlflowCredentialsKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab",
            },
            r"'mlflowCredentialsKmsKeyArn' and 'mlflowCredentialsSecretArn' must be in the same region",
        ),
        (
            {
                "mlflowCredentialsSecretArn": SECRET_ARN,
                "mlflowCredentialsKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:alias/mlflow",
            },
            r"'mlflowCredentialsKmsKeyArn' must be the ARN of a KMS key",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_keys(context: dict, message: str):
    # GIVEN a context whose MLflow settings do not fit together
    # WHEN it is read
    # THEN a ConfigError says which keys and why
    with pytest.raises(ConfigError, match=message):
        RegistryConfig.from_mapping(context)


def test_a_ca_bundle_that_holds_no_certificate_is_refused(tmp_path: Path):
    # GIVEN a file that is not a PEM certificate
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")

    # WHEN it is configured
    # THEN the synth stops, naming the key
    with pytest.raises(ConfigError, match=r"'mlflowCaBundle': .* holds no PEM certificate"):
        RegistryConfig.from_mapping({"mlflowTrackingUri": "https://m.example.com", "mlflowCaBundle": str(bad)})


def test_unity_catalog_gets_time_and_disk_for_the_copy_unless_told_otherwise():
    # GIVEN Unity Catalog with the sizing keys left at 0, and with them set
    uc = {"mlflowTrackingUri": "databricks", "mlflowCredentialsSecretArn": SECRET_ARN}
    automatic = RegistryConfig.from_mapping(uc)
    chosen = RegistryConfig.from_mapping({**uc, "registerTimeoutSeconds": 300, "registerEphemeralStorageMb": 2048})
    server = RegistryConfig.from_mapping({"mlflowTrackingUri": "https://m.example.com"})

    # WHEN the register function's sizing is read
    # THEN UC gets 900 s and 4 GB by default, the context's values when given, and other registries the route's own
    assert (automatic.effective_register_timeout_seconds, automatic.effective_register_ephemeral_storage_mb) == (
        900,
        4096,
    )
    assert (chosen.effective_register_timeout_seconds, chosen.effective_register_ephemeral_storage_mb) == (300, 2048)
    assert (server.effective_register_timeout_seconds, server.effective_register_ephemeral_storage_mb) == (None, 512)


# --- what each backend gets -----------------------------------------------------------------------------------------


def test_unity_catalog_register_function_is_sized_for_the_copy(custom_synth: Synth, default_synth: Synth):
    # GIVEN the customised stack (Databricks with Unity Catalog) and the default one
    custom = custom_synth.autopilot.pipelines["register"]
    default = default_synth.autopilot.pipelines["register"]

    # WHEN we read the register functions and queues
    uc_function, uc_queue = _properties(custom_synth, custom.function), _properties(custom_synth, custom.queue)
    plain_function = _properties(default_synth, default.function)

    # THEN UC's function has 900 s, 4 GB of /tmp and 1 GB of memory, and its queue hides messages 6 × as long; the
    # default keeps the route's 60 s and memory
    assert (uc_function["Timeout"], uc_function["EphemeralStorage"]) == (900, {"Size": 4096})
    assert uc_function["MemorySize"] == 1024
    assert uc_queue["VisibilityTimeout"] == 6 * 900
    assert (plain_function["Timeout"], plain_function["MemorySize"]) == (60, REGISTER.memory_mb)
    assert "EphemeralStorage" not in plain_function


def test_functions_run_in_the_configured_subnets_and_security_groups(custom_synth: Synth, default_synth: Synth):
    # GIVEN the customised stack (vpcSubnetIds and vpcSecurityGroupIds set) and the default one
    for name, pipeline in custom_synth.autopilot.pipelines.items():
        # WHEN we read each route's function and role
        function = _properties(custom_synth, pipeline.function)
        statements = _by_sid(role_statements(custom_synth, pipeline.role))

        # THEN it is placed in those subnets with those groups, and may manage its network interfaces
        assert function["VpcConfig"] == {"SubnetIds": SUBNET_IDS, "SecurityGroupIds": SECURITY_GROUP_IDS}, name
        assert statements["ManageVpcNetworkInterfaces"]["Resource"] == "*"
    for pipeline in default_synth.autopilot.pipelines.values():
        assert "VpcConfig" not in _properties(default_synth, pipeline.function)
        assert "ManageVpcNetworkInterfaces" not in _by_sid(role_statements(default_synth, pipeline.role))


def test_sagemaker_gets_its_actions_on_that_tracking_server_and_the_plugin_layer(
    sagemaker_synth: Synth, default_synth: Synth
):
    # GIVEN a stack whose tracking URI is a SageMaker tracking server
    pipeline = sagemaker_synth.autopilot.pipelines["register"]

    # WHEN we read the register role and function
    statements = _by_sid(role_statements(sagemaker_synth, pipeline.role))
    function = _properties(sagemaker_synth, pipeline.function)
    environment = function["Environment"]["Variables"]

    # THEN the role may call exactly the register route's sagemaker-mlflow actions, on that server only, and read no
    # secret
    assert set(statements["UseSageMakerMlflow"]["Action"]) == set(SAGEMAKER_MLFLOW_REGISTER_ACTIONS)
    assert statements["UseSageMakerMlflow"]["Resource"] == SAGEMAKER_ARN
    assert "ReadMlflowCredentials" not in statements
    # AND the function gets the plugin's layer beside the dependency layer (the default stack does not)
    assert environment["MLFLOW_TRACKING_URI"] == SAGEMAKER_ARN
    plugin_layer = {"Ref": sagemaker_synth.logical_id(sagemaker_synth.autopilot.mlflow.layers[0])}
    assert len(function["Layers"]) == 2
    assert plugin_layer in function["Layers"]
    assert len(_properties(default_synth, default_synth.autopilot.pipelines["register"].function)["Layers"]) == 1


COMPOSITE_METHODS = {
    # MlflowClient.copy_model_version reads the source version (mlflow/tracking/client.py), then the REST store's
    # AbstractStore.copy_model_version creates the registered model and the version: no CopyModelVersion request.
    "copy_model_version": ("get_model_version", "create_registered_model", "create_model_version"),
}


def test_every_registry_call_the_adapter_makes_is_a_granted_sagemaker_action():
    # GIVEN the MLflow client methods the registry adapter calls, on the client or its registry client (SageMaker's IAM
    # action is the method in PascalCase)
    adapters = REPO_ROOT / "functions" / "adapters"
    source = "".join((adapters / name).read_text() for name in ("mlflow_registry.py", "unity_catalog.py"))
    calls = re.findall(r"(?:\bclient|self\._client|self\._registry)\.([a-z_]+)\(", source)
    methods = {method for method in calls if not method.startswith("_")}
    # a client method that is no REST operation of its own stands for the operations it makes
    methods = {operation for method in methods for operation in COMPOSITE_METHODS.get(method, (method,))}
    actions = {"sagemaker-mlflow:" + "".join(part.capitalize() for part in method.split("_")) for method in methods}

    # WHEN we compare them with what the stack grants on a SageMaker tracking server
    # THEN every call is granted to the routes, nothing is granted that no call needs, and the register route's
    # narrower list is a subset
    assert len(methods) >= 10
    assert actions == set(SAGEMAKER_MLFLOW_ACTIONS)
    assert set(SAGEMAKER_MLFLOW_REGISTER_ACTIONS) <= set(SAGEMAKER_MLFLOW_ACTIONS)


def test_a_private_server_gets_sigv4_its_api_permission_and_the_ca_layer(private_server_synth: Synth):
    # GIVEN a self-hosted server behind API Gateway (SigV4) with a private CA
    pipeline = private_server_synth.autopilot.pipelines["register"]

    # WHEN we read the register role and function
    statements = _by_sid(role_statements(private_server_synth, pipeline.role))
    function = _properties(private_server_synth, pipeline.function)
    environment = function["Environment"]["Variables"]

    # THEN requests are SigV4-signed, the role may invoke exactly the configured API, TLS is verified against the
    # bundled CA (mounted by a layer), and verification is never switched off
    assert environment["MLFLOW_TRACKING_AWS_SIGV4"] == "true"
    assert statements["InvokeMlflowApi"]["Action"] == "execute-api:Invoke"
    assert statements["InvokeMlflowApi"]["Resource"] == EXECUTE_API_ARN
    assert statements["ReadMlflowCredentials"]["Resource"] == SECRET_ARN
    assert environment["MLFLOW_TRACKING_SERVER_CERT_PATH"] == CA_BUNDLE_MOUNT
    assert "MLFLOW_TRACKING_INSECURE_TLS" not in environment
    assert len(function["Layers"]) == 2


def test_tls_verification_is_on_unless_a_flag_turns_it_off_with_a_warning(
    insecure_synth: Synth, default_synth: Synth, custom_synth: Synth, sagemaker_synth: Synth
):
    # GIVEN stacks without mlflowInsecureTls, and one with it
    # WHEN we read every route function's environment and the stacks' warnings
    def insecure(synth: Synth) -> set[str]:
        return {
            name
            for name, pipeline in synth.autopilot.pipelines.items()
            if "MLFLOW_TRACKING_INSECURE_TLS" in _properties(synth, pipeline.function)["Environment"]["Variables"]
        }

    def tls_warnings(synth: Synth) -> list[Any]:
        return [
            e.data
            for e in synth.autopilot.node.metadata
            if e.type == "aws:cdk:warning" and "mlflowInsecureTls" in str(e.data)
        ]

    # THEN only the flagged stack turns verification off, for every route, and it carries a synth warning
    # (which `cdk deploy --strict` refuses)
    for synth in (default_synth, custom_synth, sagemaker_synth):
        assert insecure(synth) == set()
        assert tls_warnings(synth) == []
    assert insecure(insecure_synth) == set(insecure_synth.autopilot.pipelines)
    assert len(tls_warnings(insecure_synth)) == 1


# --- the webhook endpoint -------------------------------------------------------------------------------------------


def test_webhook_endpoint_exists_only_when_enabled(default_synth: Synth):
    # GIVEN the default stack (webhooks=false)
    # WHEN we look for function URLs
    # THEN there is none: the public endpoint is opt-in
    assert default_synth.autopilot.webhook is None
    assert default_synth.resources("AWS::Lambda::Url") == {}


def test_webhook_endpoint_is_a_public_function_url_gated_by_the_hmac(custom_synth: Synth):
    # GIVEN the customised stack (webhooks=true)
    webhook = custom_synth.autopilot.webhook
    function_ref = {"Fn::GetAtt": [custom_synth.logical_id(webhook.function), "Arn"]}

    # WHEN we read its URL, its function and the function's resource policy
    [url] = custom_synth.resources("AWS::Lambda::Url").values()
    function = _properties(custom_synth, webhook.function)
    permissions = [
        p["Properties"]
        for p in custom_synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == function_ref
    ]

    # THEN the URL needs no IAM auth (MLflow cannot sign with AWS credentials: the HMAC is the gate), anyone may call
    # it through the URL only, and its concurrency is capped so a flood cannot starve the route functions
    assert url["Properties"]["AuthType"] == "NONE"
    assert url["Properties"]["TargetFunctionArn"] == function_ref
    assert {(p["Action"], p.get("FunctionUrlAuthType"), p.get("InvokedViaFunctionUrl")) for p in permissions} == {
        ("lambda:InvokeFunctionUrl", "NONE", None),
        ("lambda:InvokeFunction", None, True),
    }
    assert function["ReservedConcurrentExecutions"] == 10  # webhookReservedConcurrency in the custom context
    assert function["Handler"] == "functions.handlers.webhook.lambda_handler"
    assert "VpcConfig" not in function  # it talks to AWS APIs only, never to MLflow


def test_webhook_function_may_only_publish_read_its_secret_and_remember_deliveries(custom_synth: Synth):
    # GIVEN the webhook function of the customised stack
    stack, webhook = custom_synth.autopilot, custom_synth.autopilot.webhook

    # WHEN we read its role's statements and its environment
    statements = _by_sid(role_statements(custom_synth, webhook.role))
    environment = _properties(custom_synth, webhook.function)["Environment"]["Variables"]

    # THEN each permission names exactly one resource of this stack, and nothing else is granted
    def ref(construct: Any) -> dict:
        return {"Ref": custom_synth.logical_id(construct)}

    assert set(statements) == {"WriteOwnLogs", "PublishProjectEvents", "ReadWebhookSecret", "RememberDeliveries", ""}
    assert statements["PublishProjectEvents"]["Resource"] == {
        "Fn::GetAtt": [custom_synth.logical_id(stack.buses.project_bus), "Arn"]
    }
    assert statements["ReadWebhookSecret"] == {
        "Sid": "ReadWebhookSecret",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": ref(webhook.secret),
    }
    assert statements["RememberDeliveries"]["Resource"] == {
        "Fn::GetAtt": [custom_synth.logical_id(stack.idempotency.table), "Arn"]
    }
    assert set(statements[""]["Action"]) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}  # tracing=true
    # AND its environment is what functions.settings builds for it
    expected = webhook_function_environment(
        bucket="BUCKET", event_bus_name="BUS", idempotency_table="TABLE", secret_arn="SECRET", tracing=True
    )
    references = {
        "BUCKET": ref(stack.artifacts.bucket),
        "BUS": ref(stack.buses.project_bus),
        "TABLE": ref(stack.idempotency.table),
        "SECRET": ref(webhook.secret),
    }
    assert environment == {name: references.get(value, value) for name, value in expected.items()}


def test_webhook_secret_is_generated_and_output(custom_synth: Synth):
    # GIVEN the webhook's secret
    secret = _properties(custom_synth, custom_synth.autopilot.webhook.secret)

    # WHEN we read how it is made and what the stack outputs
    outputs = custom_synth.template_json["Outputs"]

    # THEN Secrets Manager generates 64 characters (no punctuation, safe in any client), and the stack outputs the
    # URL and the secret's ARN (never its value)
    assert secret["GenerateSecretString"] == {"ExcludePunctuation": True, "PasswordLength": 64}
    assert "SecretString" not in secret
    assert outputs["WebhookSecretArn"]["Value"] == {
        "Ref": custom_synth.logical_id(custom_synth.autopilot.webhook.secret)
    }
    assert outputs["WebhookUrl"]["Value"]["Fn::GetAtt"][1] == "FunctionUrl"


PROD_TRACKING_SERVER = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/prod"
STAGING_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mlflow-staging-AbCdEf"
STAGING_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LADDER_ACROSS_SERVERS = f"""\
ladder:
  environments:
    - {{name: dev, model: churn, aliases: [challenger]}}
    - name: staging
      model: churn-staging
      aliases: [challenger]
      registry_uri: https://mlflow-staging.example.com
      credentials_secret: {STAGING_SECRET}
      credentials_key: {STAGING_KEY}
    - {{name: prod, model: churn-prod, aliases: [champion], registry_uri: {PROD_TRACKING_SERVER}}}
"""


def test_ladder_rungs_in_other_registries_grant_the_aliases_function_alone_what_reaches_them(tmp_path: Path):
    # GIVEN policies whose churn ladder has staging on another MLflow server (with a credentials secret of its own,
    # encrypted with a customer managed key) and prod on a SageMaker tracking server
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "default.yaml").write_text((POLICIES_DIR / "default.yaml").read_text())
    (policies / "churn.yaml").write_text(LADDER_ACROSS_SERVERS)
    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": []}, outdir=str(tmp_path / "out"))
    stack = Stack(app, "Host")
    autopilot = RegistryAutopilot(stack, "ModelRegistry", policies_dir=policies)
    synth = Synth(stack, app.synth().get_stack_by_name("Host").template, tmp_path / "out")
    # WHEN each route's role and function are read
    # THEN the aliases role (the one that copies versions up the ladder) may call the registry actions on that server
    # alone, and read staging's secret (decrypting it with its key only through Secrets Manager, for that secret);
    # the other routes may do neither
    aliases = autopilot.pipelines["aliases"]
    statements = _by_sid(role_statements(synth, aliases.role))
    assert set(statements["UseLadderSageMakerMlflow"]["Action"]) == set(SAGEMAKER_MLFLOW_ACTIONS)
    assert statements["UseLadderSageMakerMlflow"]["Resource"] == PROD_TRACKING_SERVER
    assert "UseSageMakerMlflow" not in statements
    assert statements["ReadLadderMlflowCredentials"]["Action"] == "secretsmanager:GetSecretValue"
    assert statements["ReadLadderMlflowCredentials"]["Resource"] == STAGING_SECRET
    decrypt = statements["DecryptLadderMlflowCredentials0"]
    assert (decrypt["Action"], decrypt["Resource"]) == ("kms:Decrypt", STAGING_KEY)
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
        "kms:EncryptionContext:SecretARN": STAGING_SECRET,
    }
    for name in ("register", "validate"):
        others = _by_sid(role_statements(synth, autopilot.pipelines[name].role))
        assert not {"UseLadderSageMakerMlflow", "ReadLadderMlflowCredentials", "DecryptLadderMlflowCredentials0"} & set(
            others
        )
    # AND only the aliases function gets SageMaker's plugin layer
    layers = {name: _properties(synth, p.function)["Layers"] for name, p in autopilot.pipelines.items()}
    assert len(layers["aliases"]) == len(layers["register"]) + 1 == len(layers["validate"]) + 1
