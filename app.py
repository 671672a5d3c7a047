#!/usr/bin/env python3
"""The CDK app: one stack holding the `RegistryAutopilot` construct (stacks/autopilot.py), checked by cdk-nag on every
synth. To add the construct to a stack of your own app instead, see docs/deploying.md.

No AWS calls and no lookups: the stack is environment-agnostic (no `env`), so `cdk synth` works offline and the
account and region come from the credentials at deploy time. With `-c region=<region>` the stack is bound to that
region (the account still comes from the credentials) and the synth checks the features that exist in some regions
only (SnapStart, function URLs: `stacks/regions.py`); without it, template conditions on `AWS::Region` do. Settings come from context (`cdk.json`, `-c key=value`)
through `stacks.config.RegistryConfig`.
"""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from stacks.config import RegistryConfig
from stacks.registry_stack import RegistryAutopilotStack


def build_app(app: App | None = None) -> App:
    """The app with its stack and both cdk-nag packs attached: an unacknowledged finding fails the synth."""
    app = app or App()
    config = RegistryConfig.from_node(app.node)
    RegistryAutopilotStack(app, config.stack_name, config=config)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
