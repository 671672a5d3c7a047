"""`python -m sandbox`: start the local sandbox and keep it running until Ctrl+C or SIGTERM.

    python -m sandbox [--json] [--workdir DIR] [--mlflow-port N] [--aws-port N] [--policies DIR]

(`python -m replay sandbox` is the same command.) Progress goes to stderr; the description (or, with `--json`, one
JSON line for `Sandbox.attach` and `python -m ops --sandbox`) to stdout. Exit status: 0 stopped, 2 it could not start.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from functions.project import command_name
from sandbox import command
from sandbox.processes import SandboxError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def progress(message: str) -> None:
    print(f"sandbox: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=command_name("sandbox"),
        description="Run the registry pipeline locally: moto, MLflow and the route workers.",
    )
    command.add_options(parser)
    args = parser.parse_args(argv)
    try:
        return command.run(args, progress=progress)
    except SandboxError as error:
        print(f"sandbox: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        progress("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
