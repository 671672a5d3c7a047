#!/usr/bin/env python3
"""The CDK app: one stack holding the `RegistryAutopilot` construct (stacks/autopilot.py), checked by cdk-nag on every
synth. To add the construct to a stack of your own app instead, see docs/deploying.md.

No AWS calls and no lookups: the stack is environment-agnostic (no `env`), so `cdk synth` works offline and the
account and region come from the credentials at deploy time. With `-c region=<region>` the stack is bound to that
region (the account still comes from the credentials, or from `-c account=<id>`) and the synth checks the features
that exist in some regions only (SnapStart, function URLs: `stacks/regions.py`); without it, template conditions on
`AWS::Region` do. Settings come from context (`cdk.json`, `-c key=value`) through `stacks.config.RegistryConfig`.

With `-c artifactBucketAccount=<id>` (an existing bucket in another account) the app also builds the forwarder stack
for that account (`stacks.forwarder_stack`, named `<stackName>Forwarder`), which sends the bucket's events to the
project bus by its ARN: the project stack then needs `region` and its account (`account`, or CDK_DEFAULT_ACCOUNT,
which the CDK CLI sets from the credentials), and the synth refuses without them.
"""

from __future__ import annotations

import os

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from stacks.config import RegistryConfig, bind_account
from stacks.cross_account import project_bus_arn
from stacks.forwarder_stack import forwarder_stack_from_context
from stacks.regions import partition_of
from stacks.registry_stack import RegistryAutopilotStack

CDK_DEFAULT_ACCOUNT = "CDK_DEFAULT_ACCOUNT"
"""Set by the CDK CLI to the account of the credentials it runs with (none without credentials)."""


def build_app(app: App | None = None) -> App:
    """The app with its stack (and the forwarder stack for a bucket in another account) and both cdk-nag packs
    attached: an unacknowledged finding fails the synth."""
    app = app or App()
    config = bind_account(RegistryConfig.from_node(app.node), os.environ.get(CDK_DEFAULT_ACCOUNT))
    RegistryAutopilotStack(app, config.stack_name, config=config)
    if config.bucket_in_another_account:
        forwarder_stack_from_context(
            app,
            project_bus_arn=project_bus_arn(
                partition=partition_of(config.region),
                region=config.region,
                account=config.account,
                stack_name=config.stack_name,
            ),
            bucket_name=config.artifact_bucket_name,
            artifact_root_prefix=config.artifact_root_prefix,
            stack_name=f"{config.stack_name}Forwarder",
        )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
