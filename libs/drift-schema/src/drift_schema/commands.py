"""Commands on `drift.<tenant>.cmd.*` (contract 6)."""

from __future__ import annotations

from typing import Any

import msgspec

from drift_schema.api import StartRequest, ViewResponse, WorkflowId, WorkflowRef
from drift_schema.base import Shape


class ThreadContext(Shape, frozen=True):
    client_id: str | None = None
    user_id: str | None = None
    schedule_id: str | None = None
    """Set on runs a schedule started (contract 9)."""


class StartCommand(Shape, frozen=True):
    """The start body of 5.1 with `workflowId` required."""

    workflow: WorkflowRef
    workflow_id: WorkflowId
    params: Any = None
    issue_detail: Any = None
    customer: Any = None
    order_details: Any = None
    callback_url: str | None = None
    sync_timeout_ms: int | None = None
    thread_context: ThreadContext | None = None

    @classmethod
    def from_request(cls, request: StartRequest, workflow_id: str, thread_context: ThreadContext) -> StartCommand:
        return cls(
            workflow=request.workflow,
            workflow_id=workflow_id,
            params=request.params,
            issue_detail=request.issue_detail,
            customer=request.customer,
            order_details=request.order_details,
            callback_url=request.callback_url,
            thread_context=thread_context,
        )


class ResumeCommand(Shape, frozen=True):
    workflow_id: WorkflowId
    view_response: ViewResponse = msgspec.field(default_factory=ViewResponse)
    callback_url: str | None = None


class TerminateCommand(Shape, frozen=True):
    workflow_id: WorkflowId
    reason: str | None = None


class EventCommand(Shape, frozen=True):
    workflow_id: WorkflowId
    event: str
    payload: Any = None


class RetryCommand(Shape, frozen=True):
    """Run a FAILED or TERMINATED run again from `fromNode` (contract 8.2).

    `runId` is the Temporal run the caller saw closed: a retry of a run that has changed since
    (another retry won) is refused, so of concurrent retries exactly one starts the run again.
    """

    workflow_id: WorkflowId
    from_node: str | None = None
    callback_url: str | None = None
    run_id: str | None = None


Command = StartCommand | ResumeCommand | TerminateCommand | EventCommand | RetryCommand

COMMAND_TYPES: dict[str, type[Command]] = {
    # Keyed by the last token of the command subject (`drift.<tenant>.cmd.<kind>`); codec builds its decoders here.
    "start": StartCommand,
    "resume": ResumeCommand,
    "terminate": TerminateCommand,
    "event": EventCommand,
    "retry": RetryCommand,
}
