"""How the route functions reach MLflow: permissions, network placement, client settings and a private CA.

One construct, shared by every route pipeline, so each backend's needs are stated once:
- the credentials secret (self-hosted, Databricks): read by the functions as before (`RoutePipeline`);
- SageMaker managed MLflow: the `sagemaker-mlflow:` registry actions the functions use, on that tracking server only,
  and the plugin's layer (`functions/requirements-sagemaker.lock`);
- SigV4 to an MLflow server behind API Gateway (IAM auth): `execute-api:Invoke` on the configured ARN;
- a private CA: a small layer with the PEM file, and `MLFLOW_TRACKING_SERVER_CERT_PATH` pointing at it;
- a VPC: the subnets and security groups from context, and the network-interface permissions Lambda needs;
- a promotion ladder's rungs on other SageMaker tracking servers (`ladder_tracking_servers`, from the policies): the
  aliases function, which copies versions into them, gets the same actions on each of them and the plugin's layer;
- a rung on another MLflow server with a credentials secret of its own (`ladder_credentials`, from the policies): the
  aliases function alone may read that secret (and decrypt it with its key, when it names one).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.config import RegistryConfig
from stacks.constants import FUNCTIONS_SAGEMAKER_LOCK, LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, project_path
from stacks.constructs.function_code import dependency_layer
from stacks.nag import acknowledge, wildcard_resource_finding

LADDER_ROUTE = "aliases"
"""The route whose function climbs promotion ladders (`functions.handlers.aliases`)."""
CA_BUNDLE_MOUNT = "/opt/mlflow-ca/ca.pem"
"""Where the CA layer's file lands (Lambda extracts layers under /opt)."""

# What the route functions call on a SageMaker tracking server, by route: the register route's own, and for every other
# route the reads and the alias, tag and stage writes that validation and promotion make (`MlflowRegistry`'s methods). Names from the Service
# Authorization Reference (sagemaker-mlflow) and AWS's managed SageMaker policies.
SAGEMAKER_MLFLOW_REGISTER_ACTIONS = (
    "sagemaker-mlflow:GetLoggedModel",
    "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:SearchModelVersions",
    "sagemaker-mlflow:GetRegisteredModel",
    "sagemaker-mlflow:CreateRegisteredModel",
    "sagemaker-mlflow:CreateModelVersion",
)
SAGEMAKER_MLFLOW_ACTIONS = (
    "sagemaker-mlflow:GetLoggedModel",
    "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:SearchModelVersions",
    "sagemaker-mlflow:GetModelVersion",
    "sagemaker-mlflow:GetRegisteredModel",
    "sagemaker-mlflow:GetModelVersionByAlias",
    "sagemaker-mlflow:CreateRegisteredModel",
    "sagemaker-mlflow:CreateModelVersion",
    "sagemaker-mlflow:SetModelVersionTag",
    "sagemaker-mlflow:DeleteModelVersionTag",
    "sagemaker-mlflow:SetRegisteredModelTag",
    "sagemaker-mlflow:SetRegisteredModelAlias",
    "sagemaker-mlflow:TransitionModelVersionStage",
)

# Lambda creates and removes the functions' network interfaces with their own role (AWSLambdaVPCAccessExecutionRole).
_VPC_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def credentials_key_statement(
    key_arn: str, secret_arn: str, sid: str = "DecryptMlflowCredentials"
) -> iam.PolicyStatement:
    """kms:Decrypt on the secret's customer managed key, only when Secrets Manager asks for that secret.

    GetSecretValue decrypts with the caller's permissions; AWS's Secrets Manager guide ("Secret encryption and
    decryption", https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html) names
    kms:ViaService = secretsmanager.<region>.amazonaws.com and the encryption context SecretARN = the secret's ARN.
    """
    region = secret_arn.split(":")[3]
    return iam.PolicyStatement(
        sid=sid,
        actions=["kms:Decrypt"],
        resources=[key_arn],
        conditions={
            "StringEquals": {
                "kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                "kms:EncryptionContext:SecretARN": secret_arn,
            }
        },
    )


class MlflowAccess(Construct):
    """`statements()`, `layers`, `environment` (kwargs for `function_environment`) and `place(function)`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RegistryConfig,
        ladder_tracking_servers: Sequence[str] = (),
        ladder_credentials: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.ladder_tracking_servers = sorted(set(ladder_tracking_servers) - {config.sagemaker_tracking_server_arn})
        """SageMaker tracking servers that rungs of the policies' ladders name, other than the functions' own."""
        self.ladder_credentials = sorted(set((ladder_credentials or {}).values()))
        """(secret ARN, key ARN or "") of the other MLflow servers that rungs reach with a secret of their own."""
        self.layers: list[lambda_.ILayerVersion] = []
        self._ladder_layers: list[lambda_.ILayerVersion] = []
        if config.sagemaker_tracking_server_arn:
            self.layers.append(self._build_sagemaker_layer())
        elif self.ladder_tracking_servers:  # only the aliases function talks to them: the others get no plugin
            self._ladder_layers.append(self._build_sagemaker_layer())
        server_cert_path = ""
        if config.mlflow_ca_bundle:
            self.layers.append(self._build_ca_layer(config.mlflow_ca_bundle))
            server_cert_path = CA_BUNDLE_MOUNT
        self.environment = {
            "mlflow_sigv4": config.mlflow_sig_v4,
            "mlflow_insecure_tls": config.mlflow_insecure_tls,
            "mlflow_server_cert_path": server_cert_path,
        }

    def route_layers(self, route_name: str) -> list[lambda_.ILayerVersion]:
        """The layers of one route's function: everyone's, and the plugin for the ladder's tracking servers."""
        return [*self.layers, *(self._ladder_layers if route_name == LADDER_ROUTE else [])]

    @property
    def in_vpc(self) -> bool:
        return bool(self.config.vpc_subnet_ids)

    def statements(self, route_name: str) -> list[iam.PolicyStatement]:
        """What a route's function may do to reach MLflow besides reading the credentials secret (the pipeline's own)."""
        config = self.config
        statements = []
        if config.sagemaker_tracking_server_arn:
            actions = SAGEMAKER_MLFLOW_REGISTER_ACTIONS if route_name == "register" else SAGEMAKER_MLFLOW_ACTIONS
            statements.append(
                iam.PolicyStatement(
                    sid="UseSageMakerMlflow",
                    actions=list(actions),
                    resources=[config.sagemaker_tracking_server_arn],
                )
            )
        if self.ladder_tracking_servers and route_name == LADDER_ROUTE:
            statements.append(
                iam.PolicyStatement(
                    sid="UseLadderSageMakerMlflow",
                    actions=list(SAGEMAKER_MLFLOW_ACTIONS),
                    resources=list(self.ladder_tracking_servers),
                )
            )
        if self.ladder_credentials and route_name == LADDER_ROUTE:
            statements.append(
                iam.PolicyStatement(
                    sid="ReadLadderMlflowCredentials",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[secret for secret, _ in self.ladder_credentials],
                )
            )
            encrypted = [(secret, key) for secret, key in self.ladder_credentials if key]
            statements.extend(
                credentials_key_statement(key, secret, sid=f"DecryptLadderMlflowCredentials{index}")
                for index, (secret, key) in enumerate(encrypted)
            )
        if config.mlflow_execute_api_arn:
            statements.append(
                iam.PolicyStatement(
                    sid="InvokeMlflowApi", actions=["execute-api:Invoke"], resources=[config.mlflow_execute_api_arn]
                )
            )
        if self.in_vpc:
            statements.append(
                iam.PolicyStatement(sid="ManageVpcNetworkInterfaces", actions=list(_VPC_ACTIONS), resources=["*"])
            )
        return statements

    def place(self, function: lambda_.Function, role: iam.IRole) -> None:
        """Put the function in the configured subnets and security groups; acknowledge what `statements()` needs."""
        arn = self.config.mlflow_execute_api_arn
        if "*" in arn:
            acknowledge(
                role,
                {
                    wildcard_resource_finding(
                        role, arn
                    ): "The execute-api ARN is the operator's (mlflowExecuteApiArn): "
                    "the MLflow client calls many methods and paths of one API stage, so the ARN names that API and "
                    "stage and leaves methods and paths open.",
                },
            )
        if not self.in_vpc:
            return
        cfn_function = function.node.default_child
        cfn_function.add_property_override(
            "VpcConfig",
            {
                "SubnetIds": list(self.config.vpc_subnet_ids),
                "SecurityGroupIds": list(self.config.vpc_security_group_ids),
            },
        )
        acknowledge(
            role,
            {
                "AwsSolutions-IAM5[Resource::*]": "Lambda creates, describes and deletes the network interfaces of a "
                "function in a VPC with the function's own role; AWS documents these EC2 actions on all resources "
                "(AWSLambdaVPCAccessExecutionRole) and ec2:DescribeNetworkInterfaces works only on '*'.",
            },
        )

    def _build_sagemaker_layer(self) -> lambda_.LayerVersion:
        return dependency_layer(
            self,
            "SageMakerPlugin",
            lock=FUNCTIONS_SAGEMAKER_LOCK,
            description="sagemaker-mlflow: the arn: tracking URI scheme for SageMaker managed MLflow",
        )

    def _build_ca_layer(self, ca_bundle: str) -> lambda_.LayerVersion:
        source = project_path(ca_bundle)
        staging = Path(tempfile.mkdtemp(prefix="mlflow-ca-"))
        target = staging / Path(CA_BUNDLE_MOUNT).relative_to("/opt")
        target.parent.mkdir(parents=True)
        shutil.copyfile(source, target)
        return lambda_.LayerVersion(
            self,
            "CaBundle",
            description="The CA bundle the functions verify the MLflow server's TLS certificate with",
            code=lambda_.Code.from_asset(str(staging)),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[LAMBDA_ARCHITECTURE],
            removal_policy=RemovalPolicy.DESTROY,
        )
