"""What can go wrong, sorted by what the pipeline must do about it.

- `Rejected`: the input is bad and retrying cannot fix it. The message goes to the dead-letter queue at
  once, with the reason, and the batch goes on.
- `NotReady`: the input is fine but early (an upload still in progress). The message comes back later;
  it is neither a failure nor a dead letter while the upload is young.
- `Unavailable`: a dependency (MLflow, S3, EventBridge) failed. The message is retried with backoff and
  reaches the dead-letter queue only after the queue's maxReceiveCount.

Skipping input that is not ours (a key that is no model) is no error: it is an `Outcome`.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: `reason` is a short stable code for metrics, `message` the sentence for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Rejected(PipelineError):
    """Bad input: dead-letter now, with the reason."""


class NotReady(PipelineError):
    """Early input: come back later."""


class Unavailable(PipelineError):
    """A dependency failed: retry with backoff."""


class InProgress(Unavailable):
    """Another attempt holds the same work (an idempotency record in progress): retry later, like a dependency."""
