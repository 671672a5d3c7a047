"""Names the whole project shares: the functions, the stack, the sandbox and the command lines take them from here."""

from __future__ import annotations

from pathlib import Path

PROJECT = "registry-autopilot"
"""The project's name: the `source` of its events, its metrics' service prefix, its `registered_by` tag value, and
the prefix of the sandbox's resource names."""

ROOT = Path(__file__).resolve().parents[1]
"""The folder holding `functions/` and `policies/`: the repository, and on Lambda the bundle's root."""

FIFO_SUFFIX = ".fifo"
"""SQS names every FIFO queue so (and only FIFO queues)."""

SANDBOX_REGION = "us-east-1"
"""The region the sandbox, its workers and the command lines that talk to it use (moto's server takes any)."""
