"""Per-tenant fairness at the gateway: starts per second (token bucket) and open sync calls.

Both are kept per gateway process: a token bucket and a counter per tenant in memory, no
round trip on the hot path and nothing to fail when Redis is slow. With N gateway replicas
behind a load balancer a tenant gets up to N times each limit; size the settings for that
(docs/fairness.md). Limits answer 429 with `Retry-After`, never queue: a waiting request
would hold a connection and a slot that another tenant's request could use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from drift_runtime.web import TooManyRequests


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """One tenant's limits; 0 turns a limit off."""

    starts_per_second: float = 200.0
    starts_burst: int = 400
    sync_waiters: int = 1000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class Fairness:
    """The limits of every tenant, and what each tenant is using of them in this process."""

    default: TenantLimits = field(default_factory=TenantLimits)
    per_tenant: dict[str, TenantLimits] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _waiters: dict[str, int] = field(default_factory=dict)

    def limits(self, tenant: str) -> TenantLimits:
        return self.per_tenant.get(tenant, self.default)

    def take_start(self, tenant: str) -> None:
        """Spend one start token of `tenant`; TooManyRequests (429) when its bucket is empty."""
        limits = self.limits(tenant)
        if limits.starts_per_second <= 0:
            return
        now = time.monotonic()
        burst = max(1, limits.starts_burst)
        bucket = self._buckets.get(tenant)
        if bucket is None:
            bucket = self._buckets[tenant] = _Bucket(tokens=float(burst), updated=now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * limits.starts_per_second)
        bucket.updated = now
        if bucket.tokens < 1.0:
            wait_s = math.ceil((1.0 - bucket.tokens) / limits.starts_per_second)
            raise TooManyRequests(
                f"over {limits.starts_per_second:g} starts per second (burst {burst}) for this tenant",
                retry_after_s=wait_s,
            )
        bucket.tokens -= 1.0

    @contextmanager
    def sync_waiter(self, tenant: str) -> Iterator[None]:
        """Hold one of `tenant`'s sync-call slots while the block runs; TooManyRequests when none is free."""
        limit = self.limits(tenant).sync_waiters
        open_now = self._waiters.get(tenant, 0)
        if limit > 0 and open_now >= limit:
            raise TooManyRequests(f"over {limit} open sync calls for this tenant; use callbackUrl or retry")
        self._waiters[tenant] = open_now + 1
        try:
            yield
        finally:
            left = self._waiters[tenant] - 1
            if left:
                self._waiters[tenant] = left
            else:
                del self._waiters[tenant]

    def open_sync_calls(self, tenant: str) -> int:
        return self._waiters.get(tenant, 0)
