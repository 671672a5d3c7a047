"""How long a message waits before its next try.

- A failed try (a dependency is down) waits `retry_delay(receive_count)`: exponential from 2 s, capped
  at 5 minutes; with the register queue's maxReceiveCount of 8 a message survives about 8 minutes of
  outage before it is dead-lettered (and can be redriven).
- An early message (an upload still in progress) is re-enqueued with `defer_delay(deferrals)`:
  5 s, 10 s, 20 s ... capped at SQS's 15-minute maximum delay. Re-enqueueing starts a new message, so
  deferrals do not count towards maxReceiveCount; the upload's age bounds them instead.
"""

from __future__ import annotations

MAX_SQS_DELAY_SECONDS = 900


def retry_delay(receive_count: int, *, base: int = 2, cap: int = 300) -> int:
    exponent = max(receive_count - 1, 0)
    return min(cap, base * 2 ** min(exponent, 20))


def defer_delay(deferrals: int, *, base: int = 5, cap: int = MAX_SQS_DELAY_SECONDS) -> int:
    exponent = max(deferrals - 1, 0)
    return min(cap, base * 2 ** min(exponent, 20))
