"""What Lambda's SQS event source mapping hands a function, and how it reads the answer.

Pure functions (no I/O), so the shape of the event and the partial-batch rules are unit-tested:

- `lambda_sqs_event` turns a ReceiveMessage response into the `{"Records": [...]}` event Lambda builds (from a
  FIFO queue with the FIFO attributes Lambda passes: `MessageGroupId`, `MessageDeduplicationId`, `SequenceNumber`);
- `failed_message_ids` reads `batchItemFailures` the way Lambda does with `ReportBatchItemFailures`;
- `LambdaContext` is the context object handlers (and Powertools) read.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from functions.project import FIFO_SUFFIX, SANDBOX_REGION

ACCOUNT_ID = "123456789012"
"""moto's default account, so ARNs built here match the ones moto returns."""


class WholeBatchFailed(Exception):
    """The handler's answer fails the whole batch (Lambda then deletes nothing)."""


def queue_name_from_url(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def queue_arn(queue_url: str, *, region: str, account_id: str = ACCOUNT_ID) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{queue_name_from_url(queue_url)}"


def lambda_sqs_event(messages: Iterable[Mapping[str, Any]], *, event_source_arn: str, region: str) -> dict:
    """The event Lambda delivers for a batch of SQS messages (boto3 ReceiveMessage `Messages` in)."""
    return {"Records": [_record(message, event_source_arn=event_source_arn, region=region) for message in messages]}


def _record(message: Mapping[str, Any], *, event_source_arn: str, region: str) -> dict:
    attributes = {name: str(value) for name, value in message.get("Attributes", {}).items()}
    if event_source_arn.endswith(FIFO_SUFFIX) and "SequenceNumber" not in attributes:
        attributes["SequenceNumber"] = fifo_sequence_number(message)
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(sorted(attributes.items())),
        "messageAttributes": {
            name: _message_attribute(value) for name, value in sorted(message.get("MessageAttributes", {}).items())
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": event_source_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def fifo_sequence_number(message: Mapping[str, Any]) -> str:
    """A stand-in for the `SequenceNumber` SQS gives every FIFO message, which moto leaves out of messages it
    deduplicated on content (every message EventBridge sends): 20 digits that grow with `SentTimestamp` (the
    millisecond), ties broken by the message id; the same message keeps its number when it is received again.
    """
    sent = int(message.get("Attributes", {}).get("SentTimestamp") or 0)
    tie_break = int(hashlib.sha256(message["MessageId"].encode()).hexdigest(), 16) % 10**7
    return f"{sent * 10**7 + tie_break:020d}"


def _message_attribute(value: Mapping[str, Any]) -> dict:
    """SQS's `{"StringValue", "DataType"}` in Lambda's camelCase shape (binary values base64-encoded)."""
    attribute: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType", "")}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = _base64(value["BinaryValue"])
    if value.get("StringListValues"):
        attribute["stringListValues"] = list(value["StringListValues"])
    if value.get("BinaryListValues"):
        attribute["binaryListValues"] = [_base64(item) for item in value["BinaryListValues"]]
    return attribute


def _base64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def failed_message_ids(result: Any, batch_message_ids: Iterable[str]) -> set[str]:
    """The message ids the handler reported as failed; raise `WholeBatchFailed` where Lambda would.

    Lambda treats the batch as a complete success for a null or empty response and for a null or empty
    `batchItemFailures`; as a complete failure for a response it cannot read, an item without a non-empty
    `itemIdentifier`, or an identifier that is not a message of the batch.
    """
    if result is None:
        return set()
    if not isinstance(result, Mapping):
        raise WholeBatchFailed(f"the handler returned {type(result).__name__}, not an object")
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        raise WholeBatchFailed("batchItemFailures is not a list")
    known = set(batch_message_ids)
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or not identifier:
            raise WholeBatchFailed(f"batchItemFailures has an item without an itemIdentifier: {item!r}")
        if identifier not in known:
            raise WholeBatchFailed(f"batchItemFailures names {identifier!r}, which is not in the batch")
        failed.add(identifier)
    return failed


@dataclass
class LambdaContext:
    """The context object a Lambda handler receives (what handlers and Powertools read of it)."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    region: str = SANDBOX_REGION
    account_id: str = ACCOUNT_ID
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if not self._deadline:
            self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"sandbox/[{self.function_version}]{self.aws_request_id[:8]}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
