"""Bring your own bucket (`artifactBucketName`): imported, never owned, notifications untouched by default."""

from __future__ import annotations

import pytest

from stacks import outputs
from stacks.config import ConfigError, RegistryConfig
from stacks.constructs.bucket_event_bridge import RESOURCE_TYPE
from tests.infrastructure.conftest import Synth, synthesize
from tests.infrastructure.template_queries import as_list, policy_statements, role_statements
from tests.infrastructure.test_cfn_lint import ACCEPTED_WARNINGS, lint

BUCKET = "ml-platform-artifacts"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666"


@pytest.fixture(scope="module")
def imported_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context = {"artifactBucketName": BUCKET, "artifactBucketKeyArn": KEY_ARN, "artifactRootPrefix": "teams/mlflow"}
    return synthesize(context, outdir=tmp_path_factory.mktemp("imported-cdk.out"))


@pytest.fixture(scope="module")
def enabling_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context = {"artifactBucketName": BUCKET, "artifactBucketEventBridge": "enable"}
    return synthesize(context, outdir=tmp_path_factory.mktemp("enabling-cdk.out"))


def _bucket_arn_parts(value: dict) -> str:
    """`arn::s3:::BUCKET/teams/mlflow/*`: the Fn::Join CDK writes, as one string without its partition."""
    return "".join(part if isinstance(part, str) else "" for part in value["Fn::Join"][1])


def test_an_imported_bucket_is_not_a_resource_of_the_stack(imported_synth: Synth):
    # GIVEN the stack with an existing bucket and its key
    resources = imported_synth.template_json["Resources"]

    # WHEN we look for what would own the bucket, its key or its notifications
    s3_resources = [lid for lid, r in resources.items() if r["Type"].startswith("AWS::S3::")]
    keys = [lid for lid, r in resources.items() if r["Type"] in ("AWS::KMS::Key", "AWS::KMS::Alias")]
    custom = [r["Type"] for r in resources.values() if r["Type"].startswith("Custom::")]

    # THEN there is none: no bucket, bucket policy, lifecycle or key (the alarm topic's key is the only one), and no
    # notifications custom resource of any kind
    assert s3_resources == []
    assert all(lid.startswith("MonitoringTopicKey") for lid in keys)
    assert "Custom::S3BucketNotifications" not in custom
    assert custom == []


def test_the_outputs_name_the_imported_bucket_and_its_key(imported_synth: Synth):
    # GIVEN the stack's outputs
    values = {name: output["Value"] for name, output in imported_synth.template_json["Outputs"].items()}

    # THEN the bucket is named as is, the key too, and the artifact root points into it
    assert values[outputs.IMPORTED_BUCKET_NAME] == BUCKET
    assert values[outputs.BUCKET_NAME] == BUCKET
    assert values[outputs.ARTIFACT_BUCKET_KEY_ARN] == KEY_ARN
    assert values[outputs.ARTIFACT_ROOT_URI] == f"s3://{BUCKET}/teams/mlflow"


def test_route_roles_read_only_under_the_model_prefixes_and_decrypt_with_the_given_key(imported_synth: Synth):
    # GIVEN the register function's role on the imported bucket
    statements = role_statements(imported_synth, imported_synth.autopilot.pipelines["register"].role)

    # WHEN we find its S3 read and KMS statements
    (read,) = (s for s in statements if "s3:GetObject" in as_list(s["Action"]))
    (decrypt,) = (s for s in statements if "kms:" in str(s["Action"]))

    # THEN reads are under models/ and the artifact root only, and the key is the given one, decrypt only, via S3
    assert sorted(_bucket_arn_parts(r) for r in read["Resource"]) == [
        f"arn::s3:::{BUCKET}/models/*",
        f"arn::s3:::{BUCKET}/teams/mlflow/*",
    ]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == KEY_ARN
    assert "kms:ViaService" in decrypt["Condition"]["StringEquals"]


def test_writer_policy_writes_only_under_the_prefixes_and_encrypts_with_the_given_key(imported_synth: Synth):
    # GIVEN the writer managed policy
    policy = imported_synth.resources("AWS::IAM::ManagedPolicy")[
        imported_synth.logical_id(imported_synth.autopilot.writer.policy)
    ]
    statements = policy_statements(policy["Properties"]["PolicyDocument"])

    # WHEN we find the object and key statements
    (write,) = (s for s in statements if "s3:PutObject" in as_list(s["Action"]))
    (key,) = (s for s in statements if s["Resource"] == KEY_ARN)

    # THEN writes stay under the prefixes and the key can encrypt and generate data keys (and decrypt, for multipart)
    assert sorted(_bucket_arn_parts(r) for r in write["Resource"]) == [
        f"arn::s3:::{BUCKET}/models/*",
        f"arn::s3:::{BUCKET}/teams/mlflow/*",
    ]
    assert set(as_list(key["Action"])) == {"kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"}


def test_a_bucket_without_a_key_gets_no_kms_permission(enabling_synth: Synth):
    # GIVEN an existing bucket with SSE-S3 (no artifactBucketKeyArn)
    template = enabling_synth.template_json
    # WHEN we collect every KMS action granted for the bucket (the alarm topic has a key of its own)
    granted = [
        s
        for resource in template["Resources"].values()
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for s in policy_statements(resource["Properties"]["PolicyDocument"])
        if s.get("Sid") == "UseBucketKeyThroughS3"
    ]
    # THEN there is none
    assert granted == []


def test_enable_adds_only_the_projects_own_get_then_put_resource(enabling_synth: Synth):
    # GIVEN artifactBucketEventBridge=enable
    resources = enabling_synth.template_json["Resources"]

    # WHEN we list the custom resources and what the handler's role may do to the bucket
    custom = [r for r in resources.values() if r["Type"].startswith("Custom::")]
    role = enabling_synth.autopilot.bucket_event_bridge.function.role
    actions = {a for s in role_statements(enabling_synth, role) for a in as_list(s["Action"]) if a.startswith("s3:")}

    # THEN it is ours (not CDK's S3BucketNotifications), naming the bucket, with get/put of the configuration only
    assert [r["Type"] for r in custom] == [RESOURCE_TYPE]
    assert custom[0]["Properties"]["BucketName"] == BUCKET
    assert actions == {"s3:GetBucketNotification", "s3:PutBucketNotification"}
    assert not any(r["Type"] == "AWS::S3::Bucket" for r in resources.values())


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"artifactBucketName": "Upper_Case"}, r"'artifactBucketName' is not an S3 bucket name: it must be 3 to 63"),
        ({"artifactBucketName": "a..b"}, r"'artifactBucketName' .* two adjacent periods"),
        ({"artifactBucketName": "192.168.5.4"}, r"'artifactBucketName' .* IP address"),
        ({"artifactBucketName": "xn--bucket"}, r"'artifactBucketName' .* start with 'xn--'"),
        ({"artifactBucketName": "models-s3alias"}, r"'artifactBucketName' .* end with '-s3alias'"),
        ({"artifactBucketName": BUCKET, "artifactBucketKeyArn": "alias/models"}, r"'artifactBucketKeyArn' must be"),
        ({"artifactBucketKeyArn": KEY_ARN}, r"'artifactBucketKeyArn' applies to an existing bucket"),
        ({"artifactBucketEventBridge": "enable"}, r"'artifactBucketEventBridge' applies to an existing bucket"),
        ({"artifactBucketName": BUCKET, "artifactBucketEventBridge": "on"}, r"'artifactBucketEventBridge' must be"),
        (
            {"artifactBucketName": BUCKET, "artifactBucketKeyArn": KEY_ARN, "region": "us-east-1"},
            r"'artifactBucketKeyArn': the key is in eu-west-1, the stack in us-east-1",
        ),
    ],
)
def test_bad_bucket_keys_raise_an_error_naming_the_key(context: dict, message: str):
    # GIVEN a context with a bad existing-bucket value
    # WHEN it is read
    # THEN a ConfigError names the key and says what is expected
    with pytest.raises(ConfigError, match=message):
        RegistryConfig.from_mapping(context)


def test_bucket_keys_are_read_from_cli_strings():
    # GIVEN the keys as `cdk -c` passes them
    config = RegistryConfig.from_mapping(
        {"artifactBucketName": f" {BUCKET} ", "artifactBucketKeyArn": KEY_ARN, "artifactBucketEventBridge": "ENABLE"}
    )
    # THEN they are kept, trimmed and lower-cased where it matters
    assert (config.artifact_bucket_name, config.artifact_bucket_key_arn) == (BUCKET, KEY_ARN)
    assert config.artifact_bucket_event_bridge == "enable"
    assert config.imports_bucket


@pytest.mark.parametrize("synth_name", ["imported_synth", "enabling_synth"])
def test_the_existing_bucket_templates_pass_cfn_lint(synth_name: str, request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    # GIVEN the template with an existing bucket (and with the EventBridge custom resource)
    synth: Synth = request.getfixturevalue(synth_name)
    # WHEN cfn-lint checks it in one region with SnapStart
    matches = lint(synth, tmp_path, ["eu-west-1"])
    # THEN it finds nothing but the warning the default template has too (CDK's DependsOn next to a Ref)
    assert [str(match) for match in matches if match.rule.id not in ACCEPTED_WARNINGS] == []


def test_a_bad_bucket_prop_names_the_prop_and_its_context_key():
    # GIVEN a config built in code (the construct's props) with a bucket name S3 refuses
    # WHEN it is built
    # THEN the error names the prop and the context key
    with pytest.raises(ConfigError, match=r"prop 'artifact_bucket_name' \(context key 'artifactBucketName'\) is not"):
        RegistryConfig(artifact_bucket_name="Not_A_Bucket")
