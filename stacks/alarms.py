"""Every alarm's text in one place: what it means and what to do first.

The alerting construct (`stacks/constructs/alerting.py`) fills these texts with the stack's own names and ARNs for
each alarm's description; `python -m stacks.runbook` renders the same texts, with placeholders, as the runbook
(`docs/alarms.md`, `make docs`). Pure Python, no CDK import. To add an alarm: add its text here, create it in the
alerting construct, then run `make docs`.

A text is a `str.format` template. Commands are in backticks: the runbook shows them as code, and the alarm
description drops the backticks.
"""

from __future__ import annotations

from dataclasses import dataclass

PERIOD_MINUTES = 5
"""The period of every alarm's metric."""
QUEUE_AGE_ALARM_SECONDS = 30 * 60
"""Longer than anything the pipeline waits on purpose: a retried message comes back within ~9 minutes (backoff up to
5 minutes, maxReceiveCount 8) and a deferred one is a new message after at most 15 minutes."""
THROTTLE_ALARM_PERIODS = 3
"""Throttled batches wait in the queue and are retried: only a quarter of an hour of them is worth a page."""
RUNBOOK = "docs/alarms.md"
"""Where the runbook is; every alarm description ends by pointing there."""


@dataclass(frozen=True)
class AlarmText:
    """One kind of alarm: how it is named, what it means and the first steps."""

    name: str
    """How the alarm is named after the stack's name and a dash (the runbook's heading)."""
    meaning: str
    first_steps: str

    def description(self, **values: object) -> str:
        """The alarm's description: these texts with the given values, without the backticks."""
        text = f"{self.meaning} {self.first_steps} Runbook: {RUNBOOK}."
        return text.format(**values).replace("`", "")


ALARMS: dict[str, AlarmText] = {
    "errors": AlarmText(
        name="<route>-errors",
        meaning="The {route} function failed whole invocations: a crash at start, bad configuration, a timeout or "
        "out of memory (failures of single records do not count here). The batch is retried and dead-lettered after "
        "{receives} receives.",
        first_steps="Read the error: `aws logs tail {log_group} --since 1h --filter-pattern ERROR`. Fix the "
        "configuration (`-c key=value`, `make deploy`) or roll the code back (`git revert <commit>`, `make deploy`), "
        "then redrive what reached the dead-letter queue: `python -m ops --stack {stack} redrive {route}`.",
    ),
    "throttles": AlarmText(
        name="<route>-throttles",
        meaning="For {minutes} minutes Lambda has refused to run the {route} function (the account's concurrency "
        "is used up). Nothing is lost: messages wait in the queue.",
        first_steps="Check the account limit (`aws lambda get-account-settings`) and find what else uses it; ask for "
        "a higher limit.",
    ),
    "queue-age": AlarmText(
        name="<route>-queue-age",
        meaning="A message has waited more than {minutes} minutes in the {route} queue: the function is not "
        "consuming or not keeping up (event source mapping disabled, function failing at start, concurrency too low "
        "for the load). Messages are kept 4 days.",
        first_steps="Check the {route} errors and throttles alarms, then the mapping (is it Enabled?): `aws lambda "
        "list-event-source-mappings --function-name {function}`. If the load is simply higher, raise the route's "
        "concurrency (`-c registerMaxConcurrency=N` for register) if MLflow can take it.",
    ),
    "dead-letter-queue": AlarmText(
        name="<route>-dead-letter-queue",
        meaning="The {route} dead-letter queue holds messages: events the function refused (bad input: their "
        "`reason` attribute says why), gave up on after {receives} tries (a dependency was down: no reason), or "
        "events EventBridge could not deliver.",
        first_steps="List them with their reasons: `python -m ops --stack {stack} redrive {route} --dry-run`. Bad "
        "input: fix the producer, then let them expire (14 days) or purge the queue. Outage: once MLflow (or S3, the "
        "bus) is back, move them back: `python -m ops --stack {stack} redrive {route}` (only some: `--reason "
        "registry_unavailable`, `--reason none`), or `aws sqs start-message-move-task --source-arn {dead_letter_arn} "
        "--destination-arn {queue_arn}`.",
    ),
    "delivery-dead-letter-queue": AlarmText(
        name="<route>-delivery-dead-letter-queue",
        meaning="The {route} delivery dead-letter queue (a FIFO route's: EventBridge dead-letters only into standard "
        "queues) holds events EventBridge could not deliver to the {route} queue: its policy, its KMS key, or the "
        "queue was deleted.",
        first_steps="Fix the cause; the events are in the {archive} archive: replay that window (`python -m replay "
        "archive --stack {stack} --archive {archive} --rule {route} --from <when it began>`), then purge this queue.",
    ),
    "delivery-failed": AlarmText(
        name="<rule>-delivery-failed",
        meaning="EventBridge gave up delivering events of the {rule} rule to {target} (after its retries, or at once "
        "for a permission or KMS error, or a deleted target); they went to the rule's dead-letter queue.",
        first_steps="Fix the target's policy or key, then redrive them (see the dead-letter queue alarm).",
    ),
    "events-lost": AlarmText(
        name="<rule>-events-lost",
        meaning="EventBridge could deliver events of the {rule} rule neither to {target} nor to its dead-letter "
        "queue: those events are lost from the pipeline.",
        first_steps="Fix the dead-letter queue's policy, then replay the window from the archive: `python -m replay "
        "archive --stack {stack} --from <when it began>` (narrow it with `--archive artifacts|project` and `--rule "
        "<route>`), or `aws events start-replay` from the archive to the bus. Registration is idempotent, so "
        "replaying too much is harmless.",
    ),
    "forwarder-dead-letter-queue": AlarmText(
        name="forwarder-dead-letter-queue",
        meaning="In the bucket's account (bucket in another account), EventBridge could not forward S3 events of "
        "uploaded models to the project bus after its retries: the project bus's policy does not accept the bucket "
        "account's rule, the forwarder role lost events:PutEvents, or the bus is gone. Those uploads are not "
        "registered yet.",
        first_steps="Check the project bus's policy against the forwarder stack's output `ProjectBusPolicy` and the "
        "rule's role, then read the events (`aws sqs receive-message --queue-url {forwarder_queue_url}`: each body is the S3 "
        "event, with its bucket and key). S3 events cannot be re-sent under their own source, so copy each MLmodel "
        "object onto itself (`aws s3 cp s3://<bucket>/<key> s3://<bucket>/<key> --metadata-directive REPLACE`): the "
        "new object version is announced again and registered once.",
    ),
    "notifications-dead-letter-queue": AlarmText(
        name="notifications-dead-letter-queue",
        meaning="Alerts could not be delivered: EventBridge could not publish a notification (failed verdict, alias "
        "move, pending promotion) to the alarm topic, or SNS gave up on the e-mail subscription (after 6 hours of "
        "retries).",
        first_steps="Check the notification rules' role, the topic's KMS key and the subscription (`aws sns "
        "list-subscriptions-by-topic --topic-arn {topic_arn}`). The messages hold the alert text; read them with "
        "`aws sqs receive-message --queue-url {queue_url}`.",
    ),
}
