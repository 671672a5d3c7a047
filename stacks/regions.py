"""Where the template's region-bound features exist: Lambda SnapStart and Lambda function URLs.

The lists are cfn-lint's own data (cfn-lint 1.58.0, a dev dependency, so the synth does not import it;
`tests/infrastructure/test_regions.py` fails as soon as an upgraded cfn-lint says otherwise):
- SnapStart: the regions of rule E2530 (`cfnlint.rules.resources.lmbd.SnapStartSupported`). AWS's Lambda guide says
  the same for the commercial partition ("available in all commercial Regions except Asia Pacific (New Zealand) and
  Asia Pacific (Taipei)", https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html); neither China nor GovCloud.
- Function URLs: the regions whose CloudFormation resource schemas include `AWS::Lambda::Url` (rule E3006), less
  those where Lambda's guide says function URLs are not supported ("Creating and managing Lambda function URLs",
  https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html): cfn-lint 1.58 still lists eu-south-2.

Plain data, no CDK import: `stacks.config` checks an explicit `region` against them, and the stack turns them into
CloudFormation conditions on `AWS::Region` when it is synthesized without one (`stacks.autopilot.region_condition`).
"""

from __future__ import annotations

# fmt: off
FUNCTION_URLS_UNSUPPORTED = frozenset({
    "ap-south-2", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ap-east-2", "ca-west-1",
    "eu-south-2", "eu-central-2", "il-central-1", "me-central-1",
})
"""Where Lambda's guide says function URLs are not supported (the page above)."""
SNAP_START_REGIONS = frozenset({
    "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7",
    "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1",
    "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1", "us-east-1",
    "us-east-2", "us-west-1", "us-west-2",
})
FUNCTION_URL_REGIONS = frozenset({
    "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-southeast-1",
    "ap-southeast-2", "ap-southeast-3", "ca-central-1", "cn-north-1", "eu-central-1", "eu-isoe-west-1", "eu-north-1",
    "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "eusc-de-east-1", "me-south-1", "sa-east-1",
    "us-east-1", "us-east-2", "us-iso-east-1", "us-iso-west-1", "us-isob-east-1", "us-isob-west-1", "us-isof-east-1",
    "us-isof-south-1", "us-west-1", "us-west-2",
}) - FUNCTION_URLS_UNSUPPORTED
# fmt: on


_PARTITIONS = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("eusc-", "aws-eusc"),
)


def partition_of(region: str) -> str:
    """The ARN partition of a region (`aws` for the commercial regions), for ARNs written before deployment."""
    return next((partition for prefix, partition in _PARTITIONS if region.startswith(prefix)), "aws")
