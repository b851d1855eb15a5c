"""Webhook retry delays: exponential backoff with jitter, capped; 429 honours Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx

from drift_notifier.webhooks import BASE_DELAY_S, MAX_DELAY_S, backoff_s, retry_after_s


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    """Attempt n waits between half and all of base·2^(n-1), never more than the cap, and the jitter varies."""
    rng = random.Random(7)
    for attempt in range(1, 15):
        nominal = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (attempt - 1))
        delays = [backoff_s(attempt, rng) for _ in range(50)]
        assert all(nominal * 0.5 <= delay <= nominal for delay in delays), attempt
        assert len(set(delays)) > 1, "jittered"
    assert max(backoff_s(40, rng) for _ in range(50)) <= MAX_DELAY_S


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    """A 429's Retry-After in seconds or as an HTTP date is used; a missing or unreadable one gives None."""
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "12"})) == 12.0
    assert retry_after_s(httpx.Response(429)) is None
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    delay = retry_after_s(httpx.Response(429, headers={"Retry-After": later}))
    assert delay is not None and 80 <= delay <= 90
