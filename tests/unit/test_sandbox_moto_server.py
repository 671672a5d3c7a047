"""The sandbox's moto launcher: its SQS retention check answers as moto's own does, without counting the queue."""

from __future__ import annotations

import time

import pytest
from moto.sqs.models import Message, SQSBackend

from sandbox.moto_server import retained

ACCOUNT = "123456789012"


@pytest.mark.parametrize("age_s", [0, 59, 61, 3600])
def test_the_retention_check_answers_as_motos_own(age_s: int) -> None:
    # GIVEN a queue that keeps messages for 60 s and a message sent `age_s` seconds ago
    backend = SQSBackend("us-east-1", ACCOUNT)
    backend.create_queue("retained", MessageRetentionPeriod="60")
    message = Message("id", "body")
    message.sent_timestamp = int((time.time() - age_s) * 1000)

    # WHEN the sandbox's check and moto's own are asked about it
    sandbox_says = retained(backend, "retained", message)
    moto_says = SQSBackend.is_message_valid_based_on_retention_period(backend, "retained", message)

    # THEN they agree, and a message older than the period is no longer retained
    assert sandbox_says == moto_says
    assert sandbox_says is (age_s < 60)
