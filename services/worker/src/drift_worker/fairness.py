"""Per-tenant shares of the worker's activity slots, so one tenant's slow HTTP endpoints never hold everyone's.

The worker runs at most `max_concurrent_activities` activities at once, for every tenant together. An HTTP
node whose endpoint hangs holds its slot until its timeout: a tenant with enough of them (a PARALLEL of a
hundred calls does it) would fill every slot and stall every other tenant's HTTP nodes. So a tenant may
hold at most its share of the slots; an HTTP activity past it fails at once with `TENANT_BUSY` (releasing
its slot), and the node's workflow half waits on a timer and schedules it again, without spending an
attempt of the node's retry policy. Temporal's task-queue fairness keys do not help here: they order
the backlog, but cannot take back slots that hanging calls already hold.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator

from temporalio import activity
from temporalio.exceptions import ApplicationError

from drift_runtime.messaging import TransientFault
from drift_runtime.run_counts import RunLimiter
from drift_worker.model import TENANT_BUSY, TENANT_RUNS_ACTIVITY

DEFAULT_SHARE = 0.25
"""A tenant's share of the worker's activity slots when none is configured."""


def default_tenant_slots(max_concurrent_activities: int) -> int:
    """A quarter of the worker's slots (at least one): four tenants must stall together to fill a worker."""
    return max(1, int(max_concurrent_activities * DEFAULT_SHARE))


class TenantSlots:
    """How many activities each tenant runs on this worker, bounded by `per_tenant`."""

    def __init__(self, per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self.running: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def hold(self, tenant: str) -> Iterator[None]:
        """Hold one of `tenant`'s slots for the block; ApplicationError `TENANT_BUSY` when it has none left."""
        if self.running[tenant] >= self.per_tenant:
            raise ApplicationError(
                f"tenant '{tenant}' is running {self.per_tenant} activities on this worker, its share",
                type=TENANT_BUSY,
                non_retryable=True,
            )
        self.running[tenant] += 1
        try:
            yield
        finally:
            self.running[tenant] -= 1
            if not self.running[tenant]:
                del self.running[tenant]


class TenantRuns:
    """The tenant's running-runs limit, as CHILD nodes meet it (the dispatcher applies it to starts)."""

    def __init__(self, limiter: RunLimiter) -> None:
        self.limiter = limiter

    @activity.defn(name=TENANT_RUNS_ACTIVITY)
    async def allow_child(self, tenant: str) -> int:
        """0 when one more run of `tenant` fits its limit (then counted as started); else the limit."""
        try:
            allowed = await self.limiter.allows(tenant)
        except TransientFault as fault:
            raise ApplicationError(str(fault)) from None  # retried until visibility answers
        return 0 if allowed else self.limiter.max_running
