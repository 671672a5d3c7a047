"""Invoke a handler once in a process of its own, as Lambda does: the event on stdin, the answer on the last line.

Everything the handler and its libraries write (stdout and stderr) belongs to this process, so a test can search
all of it, e.g. for a secret that must never be logged.

    python -m tests.integration.invoke_handler functions.handlers.register.lambda_handler < event.json
"""

from __future__ import annotations

import json
import os
import sys

from sandbox.event_source import LambdaContext
from sandbox.worker import import_handler

ANSWER_PREFIX = "HANDLER ANSWER "


def main() -> int:
    handler = import_handler(sys.argv[1])
    context = LambdaContext(
        function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function"),
        memory_limit_in_mb=1024,
        timeout_seconds=60,
    )
    answer = handler(json.load(sys.stdin), context)
    print(ANSWER_PREFIX + json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
