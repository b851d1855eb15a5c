"""A tenant's running runs, counted cheaply: the dispatcher's start limit and the worker's CHILD nodes share it.

A tenant's running runs are counted by Temporal's visibility store (`WorkflowId
STARTS_WITH '<tenant>~'`: Temporal ids are scoped by tenant, children included), not by a counter of
our own, which every crash, terminate or timeout would skew. The count is cached per tenant and
asked again only when it is old or the tenant nears its limit, so a start usually costs no query.
Visibility lags a little behind starts, so the limit is approximate by the starts of about a second.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from temporalio.client import Client
from temporalio.service import RPCError

from drift_runtime.messaging import TransientFault

DEFAULT_MAX_RUNNING = 10_000
"""Running runs per tenant (children included) past which a start is refused with `LIMITED`."""
COUNT_TTL_S = 5.0
"""How long a tenant's count is trusted while the tenant is far from its limit."""
NEAR_LIMIT_SHARE = 0.8
"""Past this share of its limit a tenant's count is asked for every start."""
VISIBILITY_LAG_S = 2.0
"""Starts this recent may be missing from a visibility count: they are added to it."""


@dataclass
class _Count:
    running: int
    asked_at: float
    recent: deque[float] = field(default_factory=deque)
    """When this process allowed the tenant's runs since the count was asked (and shortly before)."""

    def estimate(self) -> int:
        # Starts from well before the count are in it; later ones (or too recent to be visible) are not.
        while self.recent and self.asked_at - self.recent[0] > VISIBILITY_LAG_S:
            self.recent.popleft()
        return self.running + len(self.recent)


@dataclass
class RunLimiter:
    """Refuses a tenant's start past `max_running` running runs, counting through Temporal's visibility."""

    client: Client
    max_running: int = DEFAULT_MAX_RUNNING
    ttl_s: float = COUNT_TTL_S
    counts: dict[str, _Count] = field(default_factory=dict)

    async def allows(self, tenant: str) -> bool:
        """Whether one more run of `tenant` stays within its limit (counted as started when it does).

        A fresh count still adds this dispatcher's own starts of the last seconds, which visibility
        may not show yet: near the limit the estimate errs towards refusing.
        """
        now = time.monotonic()
        known = self.counts.get(tenant)
        stale = known is None or now - known.asked_at > self.ttl_s
        if known is None or stale or known.estimate() >= self.max_running * NEAR_LIMIT_SHARE:
            running = await self._running(tenant)
            known = _Count(running, now, known.recent if known else deque())
            self.counts[tenant] = known
        if known.estimate() >= self.max_running:
            return False
        known.recent.append(now)
        return True

    async def _running(self, tenant: str) -> int:
        query = f"WorkflowId STARTS_WITH '{tenant}~' AND ExecutionStatus = 'Running'"
        try:
            return (await self.client.count_workflows(query)).count
        except RPCError as error:
            raise TransientFault(f"temporal visibility unavailable: {error.message}") from None
