"""What the dispatcher makes of Temporal's errors: a transient fault to wait out, or a rejection to answer."""

from __future__ import annotations

from temporalio.service import RPCError, RPCStatusCode

from drift_runtime.messaging import TransientFault
from drift_schema.statuses import RejectionCode

# CANCELLED and ABORTED come from a client or server shutting down mid-call: the command itself is fine.
TRANSIENT_RPC = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.ABORTED,
    }
)


class Rejected(Exception):
    """The command cannot run; the dispatcher answers it with a REJECTED event of this code."""

    def __init__(self, code: RejectionCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def temporal_unavailable(error: RPCError) -> TransientFault:
    """The fault that keeps a command in the stream while Temporal cannot answer."""
    return TransientFault(f"temporal unavailable: {error.message}")
