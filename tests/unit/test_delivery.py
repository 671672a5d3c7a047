from __future__ import annotations

import pytest

from functions.domain.delivery import MAX_SQS_DELAY_SECONDS, defer_delay, retry_delay


@pytest.mark.parametrize(("receive_count", "seconds"), [(0, 2), (1, 2), (2, 4), (3, 8), (8, 256), (9, 300), (500, 300)])
def test_retry_delay_grows_exponentially_to_a_cap(receive_count, seconds):
    assert retry_delay(receive_count) == seconds


@pytest.mark.parametrize(("deferrals", "seconds"), [(1, 5), (2, 10), (5, 80), (8, 640), (9, 900), (100, 900)])
def test_defer_delay_stays_within_sqs_maximum(deferrals, seconds):
    assert defer_delay(deferrals) == seconds
    assert defer_delay(deferrals) <= MAX_SQS_DELAY_SECONDS
