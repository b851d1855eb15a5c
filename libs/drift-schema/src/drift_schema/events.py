"""Events on `drift.<tenant>.evt.*` (contract 6)."""

from __future__ import annotations

from typing import Any

from drift_schema.api import WorkflowResponse
from drift_schema.base import Message
from drift_schema.statuses import RejectionCode


class WorkflowEvent(WorkflowResponse, frozen=True):
    """A status change of a run; `seq` rises with each change of one run.

    `commandId` and `errorCode` are Drift additions: a `REJECTED` event names the
    command it rejects (its `Nats-Msg-Id`) and why, so a waiter can tell its own
    rejection from anyone else's.
    """

    event_id: str = ""
    tenant: str = ""
    seq: int = 0
    command_id: str | None = None
    error_code: RejectionCode | None = None
    callback_url: str | None = None
    context: dict[str, Any] | None = None
    """The run's `$global` at a stable state, for the run-context store; None when too large to carry."""
    context_omitted: bool = False
    """True when the worker left a too-large context out: the notifier asks the run for it instead."""


class NodeEvent(Message, frozen=True):
    """One node instance finished (or failed)."""

    event_id: str
    workflow_id: str
    tenant: str
    instance_name: str
    node_type: str
    status: str
    output: Any = None
    error: str | None = None
    attempt: int = 1
    started_at: str | None = None
    finished_at: str | None = None
