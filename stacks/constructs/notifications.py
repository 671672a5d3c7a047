"""Notifications: rules on the project bus that tell the alarm topic, as one readable line each (an input
transformer naming model, version, alias and reason), about every failed verdict, every alias move and every
promotion awaiting approval. They publish through a role that may only publish there; what cannot be delivered waits
in the notification dead-letter queue (which the e-mail subscription shares).

Built in the scope it is given (the monitoring construct), so the logical ids stay those deployed before this module
was split off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.models.events import DetailType
from functions.routing import EVENT_SOURCE
from stacks.constants import DEAD_LETTER_RETENTION, TARGET_MAX_EVENT_AGE, TARGET_RETRY_ATTEMPTS
from stacks.constructs.event_buses import to_event_pattern
from stacks.nag import acknowledge


@dataclass(frozen=True)
class Notification:
    """A rule on the project bus that tells the topic about one kind of event, as a sentence."""

    construct_id: str
    description: str
    pattern: dict[str, Any]
    fields: dict[str, str]
    """Placeholder name -> JSON path in the event (the input transformer's InputPathsMap)."""
    template: str
    """The message, with `{placeholder}` for each field and `{stack}` for the stack name."""


NOTIFICATIONS = (
    Notification(
        construct_id="FailedVerdicts",
        description="registry-autopilot: tell the alarm topic about every failed validation",
        pattern={
            "source": [EVENT_SOURCE],
            "detail-type": [DetailType.MODEL_VERSION_VALIDATED.value],
            "detail": {"status": ["failed"]},
        },
        fields={
            "model": "$.detail.model_name",
            "version": "$.detail.version",
            "reasons": "$.detail.reasons",
            "policy": "$.detail.policy",
            "correlation_id": "$.detail.correlation_id",
        },
        template=(
            "registry-autopilot: model {model} version {version} FAILED validation against policy {policy}, so no "
            "alias will move to it. Reasons: {reasons}. Correlation id: {correlation_id}. "
            "Details: python -m ops --stack {stack} verdict {model} {version}. "
            "After fixing the policy: python -m ops --stack {stack} validate {model} {version}."
        ),
    ),
    Notification(
        construct_id="AliasMoves",
        description="registry-autopilot: tell the alarm topic about every alias move",
        pattern={"source": [EVENT_SOURCE], "detail-type": [DetailType.MODEL_ALIAS_MOVED.value]},
        fields={
            "model": "$.detail.model_name",
            "version": "$.detail.version",
            "alias": "$.detail.alias",
            "previous_version": "$.detail.previous_version",
            "reason": "$.detail.reason",
            "actor": "$.detail.actor",
            "correlation_id": "$.detail.correlation_id",
        },
        template=(
            "registry-autopilot: alias {alias} of model {model} now points at version {version} (it pointed at "
            "{previous_version}), moved by {actor}. Why: {reason}. Correlation id: {correlation_id}. "
            "To undo: python -m ops --stack {stack} rollback {model} --alias {alias}."
        ),
    ),
    Notification(
        construct_id="PendingPromotions",
        description="registry-autopilot: tell the alarm topic about every promotion awaiting approval",
        pattern={"source": [EVENT_SOURCE], "detail-type": [DetailType.PROMOTION_PENDING.value]},
        fields={
            "model": "$.detail.model_name",
            "version": "$.detail.version",
            "alias": "$.detail.alias",
            "reason": "$.detail.reason",
            "correlation_id": "$.detail.correlation_id",
        },
        template=(
            "registry-autopilot: model {model} version {version} passed validation and awaits approval for alias "
            "{alias}. Why: {reason}. Correlation id: {correlation_id}. "
            # No literal angle brackets here: EventBridge reads any <name> as a placeholder and refuses the rule
            # (PutTargets) when InputPathsMap has no such key. `ops promote` records the caller's user name.
            "To approve: python -m ops --stack {stack} promote {model} {version} --alias {alias} "
            "(the approver recorded is your user name; add --approver NAME to record another)."
        ),
    ),
)


def build_notification_dead_letter_queue(scope: Construct) -> sqs.Queue:
    queue = sqs.Queue(
        scope,
        "NotificationDeadLetterQueue",
        retention_period=DEAD_LETTER_RETENTION,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
    )
    acknowledge(
        queue,
        {
            "AwsSolutions-SQS3": "This queue is a dead-letter queue, of the notification rules' targets "
            "(EventBridge -> SNS) and of the e-mail subscription (SNS -> e-mail), which cdk-nag cannot see; it "
            "has no queue of its own to be the DLQ of.",
            "Serverless-SQSRedrivePolicy": "Terminal dead-letter queue of undeliverable alerts: a redrive "
            "policy would only move them to yet another queue. Kept 14 days.",
        },
    )
    return queue


class Notifications:
    """`role` and `rules` (by construct id), built in `scope`."""

    def __init__(
        self,
        scope: Construct,
        *,
        project_bus: events.IEventBus,
        topic: sns.ITopic,
        key: kms.IKey,
        dead_letter_queue: sqs.IQueue,
    ):
        self._scope = scope
        self._stack_name = Stack.of(scope).stack_name
        self._project_bus = project_bus
        self._topic = topic
        self._dead_letter_queue = dead_letter_queue
        self.role = self._build_role(key)
        self.rules = {n.construct_id: self._build_rule(n) for n in NOTIFICATIONS}

    def _build_role(self, key: kms.IKey) -> iam.IRole:
        """The role the notification rules publish with: this topic and its key, with exact actions.

        CDK's SNS target grants its role `kms:GenerateDataKey*` itself; the role is handed over without policy updates
        so that the statements below are all it gets.
        """
        role = iam.Role(
            self._scope,
            "NotificationRole",
            description=f"{self._stack_name}: EventBridge publishes notifications to the alarm topic",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
        )
        role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self._topic.topic_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]))
        return role.without_policy_updates()

    def _build_rule(self, notification: Notification) -> events.Rule:
        placeholders = {name: events.EventField.from_path(path) for name, path in notification.fields.items()}
        message = notification.template.format(stack=self._stack_name, **placeholders)
        rule = events.Rule(
            self._scope,
            notification.construct_id,
            event_bus=self._project_bus,
            description=notification.description,
            event_pattern=to_event_pattern(notification.pattern),
        )
        rule.add_target(
            targets.SnsTopic(
                self._topic,
                message=events.RuleTargetInput.from_text(message),
                # A role of this stack, instead of a topic policy open to every EventBridge rule.
                role=self.role,
                dead_letter_queue=self._dead_letter_queue,
                retry_attempts=TARGET_RETRY_ATTEMPTS,
                max_event_age=TARGET_MAX_EVENT_AGE,
            )
        )
        return rule
