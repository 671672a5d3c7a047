"""`python -m ops preflight`: is an existing bucket ready for the pipeline, and if not, what its owner runs.

    python -m ops preflight --bucket ml-artifacts [--key-arn arn:aws:kms:...:key/...] [--role-arn ...]
    python -m ops preflight --stack RegistryAutopilot          # a deployed stack: its bucket and key from its outputs

Checks, each from what S3 and KMS say (read-only; nothing is written):

- The bucket in the declared account (HeadBucket with ExpectedBucketOwner = `--account`, `artifactBucketAccount`,
  else the caller's or the stack's account): S3 answers 403 when another account owns the bucket.
- The bucket in the stack's region (GetBucketLocation): S3 events reach the default bus of the bucket's region only.
- EventBridge notifications on (GetBucketNotificationConfiguration): without them no upload reaches the register
  rule. The fix is the bucket's WHOLE configuration with EventBridge added (`functions.domain.bucket_notifications`),
  so the SNS/SQS/Lambda notifications it has stay.
- Versioning on (GetBucketVersioning): without it a version's identity falls back to the object's ETag, and an
  upload over an existing key loses the old version the registry points at.
- Default encryption against `--key-arn` (GetBucketEncryption): a bucket encrypting with a KMS key the stack was not
  told of leaves every read refused (`kms:Decrypt` is granted on the given key only).
- The key policy (GetKeyPolicy, when readable): the functions' roles get KMS through IAM, which works only if the
  key policy lets the account's IAM grant it (the "Enable IAM User Permissions" statement), or names the roles.

One line per problem: what is missing, what it costs, the exact command or policy snippet for the bucket's owner.
Exit status 0 when ready, 2 when not (or when the bucket cannot be read at all).

The checks are pure (`check`); `ops.aws_checks` gathers the facts with boto3.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from functions.domain.bucket_notifications import destination_count, event_bridge_on, with_event_bridge

EXIT_READY = 0
EXIT_NOT_READY = 2
AWS_MANAGED_S3_KEY = "alias/aws/s3"


@dataclass(frozen=True)
class BucketFacts:
    """What S3 and KMS said about the bucket (None: that part could not be read; the reason is in `unreadable`)."""

    bucket: str
    notifications: dict[str, Any] | None = None
    versioning: str | None = None
    """"Enabled", "Suspended" or "" (never enabled)."""
    encryption: tuple[str, str] | None = None
    """(SSEAlgorithm, KMSMasterKeyID or "") of the bucket's default encryption rule."""
    key_policy: dict[str, Any] | None = None
    region: str | None = None
    """The bucket's region (GetBucketLocation)."""
    stack_region: str | None = None
    """The region the stack is (or will be) deployed in: the caller's."""
    unreadable: dict[str, str] = field(default_factory=dict)
    """check name -> why it could not be read (e.g. "AccessDenied: ...")."""
    expected_owner: str = ""
    """The account the bucket is declared in (`artifactBucketAccount`, else the stack's); "" when not known."""
    owner_matches: bool | None = None
    """Whether S3 accepted a read expecting that owner (`ExpectedBucketOwner`); None: not checked."""


@dataclass(frozen=True)
class Problem:
    what: str
    cost: str
    fix: str

    def line(self) -> str:
        return f"MISSING {self.what}: {self.cost}. Bucket owner runs: {self.fix}"


def check(facts: BucketFacts, *, key_arn: str = "", role_arns: Sequence[str] = ()) -> list[Problem]:
    """Every problem that keeps the pipeline from working on `facts.bucket` (empty: ready)."""
    return [
        *_owner(facts),
        *_region(facts),
        *_event_bridge(facts),
        *_versioning(facts),
        *_encryption(facts, key_arn),
        *_key_policy(facts, key_arn, role_arns),
    ]


def _owner(facts: BucketFacts) -> list[Problem]:
    if facts.owner_matches is not False:
        return []
    return [
        Problem(
            f"the bucket in the declared account {facts.expected_owner}",
            "S3 refuses a read that expects that owner (ExpectedBucketOwner: 403 AccessDenied), so the bucket belongs "
            "to another account: its events reach that account's default bus, where no rule of this stack listens, "
            "and the grants name the wrong account (or artifactBucketName is someone else's bucket)",
            "nothing on the bucket; deploy with -c artifactBucketAccount=<the bucket's account> and its forwarder stack "
            "(docs/deploying.md), or correct artifactBucketName",
        )
    ]


def _region(facts: BucketFacts) -> list[Problem]:
    if not facts.region or not facts.stack_region or facts.region == facts.stack_region:
        return []
    return [
        Problem(
            f"the bucket in the stack's region ({facts.stack_region})",
            f"the bucket is in {facts.region}, and S3 sends its events to the default bus of {facts.region} only, "
            "where the stack has no rule: nothing is registered",
            f"nothing on the bucket; deploy the stack in {facts.region} (-c region={facts.region}, or --region "
            f"{facts.region} here)",
        )
    ]


def _event_bridge(facts: BucketFacts) -> list[Problem]:
    if facts.notifications is None or event_bridge_on(facts.notifications):
        return []
    merged = json.dumps(with_event_bridge(facts.notifications), separators=(",", ":"))
    kept = destination_count(facts.notifications)
    return [
        Problem(
            "EventBridge notifications",
            "no upload reaches the register rule, so nothing is registered (models uploaded meanwhile need a "
            f"backfill); the configuration below keeps the bucket's {kept} other notification(s)",
            f"aws s3api put-bucket-notification-configuration --bucket {shlex.quote(facts.bucket)} "
            f"--skip-destination-validation --notification-configuration {shlex.quote(merged)}",
        )
    ]


def _versioning(facts: BucketFacts) -> list[Problem]:
    if facts.versioning is None or facts.versioning == "Enabled":
        return []
    return [
        Problem(
            "versioning" + (" (suspended)" if facts.versioning == "Suspended" else ""),
            "a version's identity falls back to the object's ETag, and an upload over an existing key loses the old "
            "version the registry points at (versioning adds the storage of every kept version)",
            f"aws s3api put-bucket-versioning --bucket {shlex.quote(facts.bucket)} "
            "--versioning-configuration Status=Enabled",
        )
    ]


def _key_id(key: str) -> str:
    """The key id of a key ARN or a bare key id (aliases stay as they are)."""
    return key.rsplit("key/", 1)[-1] if ":key/" in key or key.startswith("key/") else key


def _encryption(facts: BucketFacts, key_arn: str) -> list[Problem]:
    if facts.encryption is None:
        return []
    algorithm, bucket_key = facts.encryption
    uses_own_key = algorithm.startswith("aws:kms") and bucket_key and not bucket_key.endswith(AWS_MANAGED_S3_KEY)
    deploy_with = "deploy the stack with -c artifactBucketKeyArn=<the key's ARN> (a key ARN, not an alias)"
    if key_arn and not uses_own_key:
        default = "SSE-S3" if algorithm == "AES256" else f"{algorithm} with the AWS managed key aws/s3"
        return [
            Problem(
                "a default encryption with the given key",
                f"the bucket encrypts new objects with {default}, not {key_arn}; grants on that key do not apply to "
                "them (or the key ARN is wrong)",
                f"aws s3api put-bucket-encryption --bucket {shlex.quote(facts.bucket)} "
                "--server-side-encryption-configuration "
                + shlex.quote(
                    json.dumps(
                        {
                            "Rules": [
                                {
                                    "ApplyServerSideEncryptionByDefault": {
                                        "SSEAlgorithm": "aws:kms",
                                        "KMSMasterKeyID": key_arn,
                                    },
                                    "BucketKeyEnabled": True,
                                }
                            ]
                        },
                        separators=(",", ":"),
                    )
                )
                + " (or drop artifactBucketKeyArn)",
            )
        ]
    if uses_own_key and _key_id(bucket_key) != _key_id(key_arn):
        told = f"the given {key_arn}" if key_arn else "no artifactBucketKeyArn"
        return [
            Problem(
                f"the bucket's KMS key {bucket_key}",
                f"the bucket encrypts with that key but the stack was given {told}: the functions may not decrypt "
                "what teams upload, so every registration is refused and dead-lettered",
                f"nothing on the bucket; {deploy_with}" if not key_arn else deploy_with,
            )
        ]
    return []


def _allows_account_iam(policy: dict[str, Any], account: str) -> bool:
    """The key policy's "Enable IAM User Permissions": the account root may use the key (kms:* or the actions)."""
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow" or "Condition" in statement:
            continue
        principals = _as_list((statement.get("Principal") or {}).get("AWS"))
        actions = set(_as_list(statement.get("Action")))
        if {f"arn:aws:iam::{account}:root", account} & set(principals) and (
            "kms:*" in actions or {"kms:Decrypt", "kms:GenerateDataKey"} <= actions
        ):
            return True
    return False


def _key_policy(facts: BucketFacts, key_arn: str, role_arns: Sequence[str]) -> list[Problem]:
    if not key_arn or facts.key_policy is None:
        return []
    account = key_arn.split(":")[4]
    if _allows_account_iam(facts.key_policy, account):
        return []
    statement = {
        "Sid": "RegistryAutopilotUseThroughS3",
        "Effect": "Allow",
        "Principal": {"AWS": list(role_arns) or [f"arn:aws:iam::{account}:root"]},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{key_arn.split(':')[3]}.amazonaws.com"}},
    }
    return [
        Problem(
            "a key policy statement for the functions' roles",
            "the key policy does not let this account's IAM policies grant the key, so the functions' kms:Decrypt "
            "(and the writer policy's encrypt) are denied whatever IAM says",
            "add to the key policy (aws kms get-key-policy, edit, aws kms put-key-policy) the statement "
            + json.dumps(statement, separators=(",", ":")),
        )
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


OPTIONAL_CHECKS = frozenset({"key policy", "bucket's region"})
"""Checks that may stay unread (the bucket's owner may keep the key policy private) without failing the preflight."""


def ready(facts: BucketFacts, problems: Sequence[Problem]) -> bool:
    """No problem, and every check that decides whether events arrive and reads work could be read."""
    return not problems and not set(facts.unreadable) - OPTIONAL_CHECKS


def report(facts: BucketFacts, problems: Sequence[Problem]) -> list[str]:
    """The lines the command prints: problems first, then what could not be checked, then the verdict."""
    lines = [problem.line() for problem in problems]
    lines += [f"NOT CHECKED {name}: {why}" for name, why in facts.unreadable.items()]
    if ready(facts, problems):
        lines.append(f"bucket {facts.bucket}: ready")
    elif problems:
        lines.append(f"bucket {facts.bucket}: not ready ({len(problems)} problem(s))")
    else:
        lines.append(f"bucket {facts.bucket}: not verified (grant the caller s3:GetBucket* read access and run again)")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops preflight", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="a deployed stack: checks the existing bucket and key its outputs name")
    where.add_argument("--bucket", help="an existing bucket, before deploying (artifactBucketName)")
    parser.add_argument("--key-arn", default="", help="its SSE-KMS key (artifactBucketKeyArn), with --bucket")
    parser.add_argument(
        "--role-arn", action="append", default=[], help="a role that must use the key (repeatable; for the snippet)"
    )
    parser.add_argument(
        "--account",
        default="",
        help="the account the bucket must belong to (artifactBucketAccount; default: the stack's or your account)",
    )
    parser.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    args = parser.parse_args(argv)
    from ops import aws_checks  # boto3 only when the command runs

    try:
        if args.stack:
            bucket, key_arn, facts = aws_checks.stack_facts(args.stack, region=args.region, account=args.account)
        else:
            bucket, key_arn = args.bucket, args.key_arn
            facts = aws_checks.bucket_facts(bucket, key_arn=key_arn, region=args.region, account=args.account)
    except aws_checks.PreflightError as error:
        print(f"ops preflight: error: {error}", file=sys.stderr)
        return EXIT_NOT_READY
    problems = check(facts, key_arn=key_arn, role_arns=args.role_arn)
    for line in report(facts, problems):
        print(line)
    return EXIT_READY if ready(facts, problems) else EXIT_NOT_READY
