"""The one way services open Redis: bounded timeouts, and retries that survive a Redis restart."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def connect_redis(url: str, *, socket_timeout: float = 5.0, connect_timeout: float = 2.0) -> Redis:
    """A lazily connecting client for `url`.

    Across a Redis restart every pooled connection is dead; without retries each would fail its
    first call (a 503, a cache miss, a redelivered event) before being replaced.
    """
    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
    )
