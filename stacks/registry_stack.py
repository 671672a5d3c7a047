"""The project's own stack: a `RegistryAutopilot` construct (stacks/autopilot.py) and nothing else.

`app.py` builds it from context (`stacks.config.RegistryConfig.from_node`). The construct's id is "Default", which
CDK leaves out of logical ids, so the resources keep the logical ids they had when the stack held them directly:
an existing deployment updates in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Environment, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.autopilot import RegistryAutopilot
from stacks.config import RegistryConfig
from stacks.constants import POLICIES_DIR
from stacks.constructs.function_code import DependencyLayout

DESCRIPTION = "registry-autopilot: registers MLflow models written to S3 (EventBridge -> SQS -> Lambda)"


class RegistryAutopilotStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RegistryConfig,
        layout: DependencyLayout = DependencyLayout.LAYER,
        policies_dir: Path | str = POLICIES_DIR,
        permissions_boundary: iam.IManagedPolicy | str | None = None,
        role_name_prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        if (config.region or config.account) and "env" not in kwargs:
            # Without `account`, the account still comes from the credentials.
            kwargs["env"] = Environment(account=config.account or None, region=config.region or None)
        super().__init__(scope, construct_id, stack_name=config.stack_name, description=DESCRIPTION, **kwargs)
        self.config = config
        # "Default": hidden from logical ids (see the module docstring of stacks/autopilot.py).
        self.autopilot = RegistryAutopilot(
            self,
            "Default",
            config=config,
            layout=layout,
            policies_dir=policies_dir,
            permissions_boundary=permissions_boundary,
            role_name_prefix=role_name_prefix,
        )
