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

Which of the two a processed message is (`Claim`) also tells the dispatcher whether it may have been
applied before: only a message that made its key (and is no redelivery) is certainly new, so only
its start may skip looking for a run this very command already started.

Keys expire with the window (`COMMAND_DUPLICATE_WINDOW_S`), as JetStream's own window would.

Concurrent runs are counted by `drift_runtime.run_counts.RunLimiter` (shared with the worker's CHILD nodes).
"""

from __future__ import annotations

import enum
import hashlib

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from drift_runtime.messaging import TransientFault
from drift_runtime.run_counts import DEFAULT_MAX_RUNNING, RunLimiter

__all__ = ["DEFAULT_MAX_RUNNING", "Claim", "RunLimiter", "TenantDuplicates"]


class Claim(enum.Enum):
    """What a message's id says about it, in its tenant's duplicate window."""

    FRESH = "fresh"
    """This message made the key: no message with its id (this one included) was processed in the window."""
    REPEAT = "repeat"
    """The key holds this message's own sequence: an earlier delivery of it claimed it, and may have applied it."""
    DUPLICATE = "duplicate"
    """Another message made the key: this one is a later duplicate, not to be applied."""


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
        return await self.claim(tenant, msg_id, sequence) is not Claim.DUPLICATE

    async def claim(self, tenant: str, msg_id: str, sequence: int) -> Claim:
        """Claim the id for the message at stream `sequence`: whether it is new, its own repeat, or a duplicate."""
        key = self.key(tenant, msg_id)
        mine = str(sequence).encode()
        try:
            for _ in range(3):
                try:
                    await self.kv.create(key, mine)
                    return Claim.FRESH
                except KeyWrongLastSequenceError:
                    pass
                try:
                    entry = await self.kv.get(key)
                except KeyNotFoundError:
                    continue  # expired between the two calls: claim it again
                return Claim.REPEAT if entry.value == mine else Claim.DUPLICATE
        except (NatsError, TimeoutError) as error:
            raise TransientFault(f"duplicate tracking unavailable: {error}") from None
        raise TransientFault("duplicate tracking: the key kept changing")
