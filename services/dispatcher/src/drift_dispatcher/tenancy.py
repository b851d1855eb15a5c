"""Per-tenant command bookkeeping: duplicate tracking by `Nats-Msg-Id` and the concurrent-runs limit.

Duplicates. JetStream's duplicate window is one per stream, shared by every tenant: a tenant
publishing `Nats-Msg-Id: order-42` would silently suppress another tenant's later `order-42`. The
command stream keeps only JetStream's minimum window (100 ms) and the dispatcher tracks ids per
tenant in a KV bucket, `<tenant>.<digest of the id>` -> the stream sequence of the first message
that carried it, created atomically (`create` fails when the key exists). A message is processed
when it made the key or when the key holds its own sequence (a redelivery of that same message),
and acked unprocessed otherwise. What a crash between steps does:

- after the key is made, before the command is applied: the message is redelivered, finds its own
  sequence and is applied (nothing lost);
- after the command is applied, before the ack: the redelivery is applied again, which the
  dispatcher already makes a no-op (a start looks up the run's command id, updates carry it as
  their update id, a terminate of a terminated run announces again), so nothing doubles;
- two messages with the same id in flight at once: one makes the key, the other sees another
  sequence and is dropped as the duplicate it is.

Keys expire with the window (`COMMAND_DUPLICATE_WINDOW_S`), as JetStream's own window would.

Concurrent runs. A tenant's running runs are counted by Temporal's visibility store (`WorkflowId
STARTS_WITH '<tenant>~'`: Temporal ids are scoped by tenant, children included), not by a counter of
our own, which every crash, terminate or timeout would skew. The count is cached per tenant and
asked again only when it is old or the tenant nears its limit, so a start usually costs no query.
Visibility lags a little behind starts, so the limit is approximate by the starts of about a second.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass, field

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from temporalio.client import Client
from temporalio.service import RPCError

from drift_runtime.messaging import TransientFault

DEFAULT_MAX_RUNNING = 10_000
"""Running runs per tenant (children included) past which a start is refused with `LIMITED`."""
COUNT_TTL_S = 5.0
"""How long a tenant's count is trusted while the tenant is far from its limit."""
NEAR_LIMIT_SHARE = 0.8
"""Past this share of its limit a tenant's count is asked for every start."""


class TenantDuplicates:
    """Whether a command message is the first (or a redelivery of the first) with its tenant's `Nats-Msg-Id`."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @staticmethod
    def key(tenant: str, msg_id: str) -> str:
        # Any id may arrive: its digest is always a valid key token.
        return f"{tenant}.{hashlib.sha256(msg_id.encode()).hexdigest()[:40]}"

    async def first(self, tenant: str, msg_id: str, sequence: int) -> bool:
        """True when the message at stream `sequence` should be applied; False when it is a later duplicate."""
        key = self.key(tenant, msg_id)
        mine = str(sequence).encode()
        try:
            for _ in range(3):
                try:
                    await self.kv.create(key, mine)
                    return True
                except KeyWrongLastSequenceError:
                    pass
                try:
                    entry = await self.kv.get(key)
                except KeyNotFoundError:
                    continue  # expired between the two calls: claim it again
                return entry.value == mine
        except (NatsError, TimeoutError) as error:
            raise TransientFault(f"duplicate tracking unavailable: {error}") from None
        raise TransientFault("duplicate tracking: the key kept changing")


VISIBILITY_LAG_S = 2.0
"""Starts this recent may be missing from a visibility count: they are added to it."""


@dataclass
class _Count:
    running: int
    asked_at: float
    recent: deque[float] = field(default_factory=deque)
    """When this dispatcher started the tenant's runs since the count was asked (and shortly before)."""

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
