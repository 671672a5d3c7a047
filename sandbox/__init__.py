"""The local twin of the stack: moto's server, a real MLflow server and one worker per route, on 127.0.0.1.

    from sandbox import Sandbox

    with Sandbox() as sandbox:
        sandbox.upload_dir("my-model", key_prefix="models/churn/1/")
        sandbox.wait_until_quiet(timeout=60)

Modules: `core` (the `Sandbox`: settings, endpoints, life cycle), `provisioning` (the bucket, bus, table, queues and
rules on moto), `supervision` (servers and route workers, replaced when they die), `inspection` (events, dead
letters, queue depths, logs, the registry), `environment` (what the processes run with), `processes` (child
processes), `worker` (a route's function run as Lambda's SQS event source runs it), `event_source` (the Lambda SQS
event), `function_url` (a local function URL), `moto_server` (moto, as the sandbox starts it), `context` (a
deployment's settings), `command` (`python -m sandbox`), `tables` (plain text tables).
"""

from __future__ import annotations

from functions.models.dead_letters import DeadLetter
from sandbox.core import Sandbox
from sandbox.environment import DUMMY_CREDENTIALS, REGION, REPO_ROOT, check_dependencies, temporary_environment
from sandbox.processes import SandboxError
from sandbox.provisioning import RouteWiring
from sandbox.supervision import WorkerReplacement
from sandbox.tables import format_table

__all__ = [
    "DUMMY_CREDENTIALS",
    "REGION",
    "REPO_ROOT",
    "DeadLetter",
    "RouteWiring",
    "Sandbox",
    "SandboxError",
    "WorkerReplacement",
    "check_dependencies",
    "format_table",
    "temporary_environment",
]
