"""What the interpreter workflow hands its node activities, and what they answer."""

from __future__ import annotations

from typing import Any

import msgspec

from drift_schema.base import Message
from drift_schema.events import NodeEvent, WorkflowEvent
from drift_schema.nodes import NodeDefinition


class NodeTask(Message, frozen=True):
    """One visit of one node instance, with everything its expressions may read."""

    tenant: str
    workflow_id: str
    definition_id: str
    definition_version: str | None
    instance: str
    node: NodeDefinition
    parameters: dict[str, Any]
    context: dict[str, Any]
    enums: dict[str, Any]
    event_id: str
    started_at: str
    bindings: dict[str, Any] | None = None
    """Variables besides contract 3's: `$item` and `$index` inside a MAP item's branch."""


class NodeResult(Message, frozen=True):
    """A node's evaluation: its output plus what the workflow needs to move on."""

    output: Any = None
    next_node: str | None = None
    disposition: Any = None
    view: Any = None
    error: str | None = None


class EmitBatch(Message, frozen=True):
    """Events to publish, node events first, in order."""

    nodes: list[NodeEvent] = msgspec.field(default_factory=list)
    status: WorkflowEvent | None = None
    trace_context: dict[str, str] = msgspec.field(default_factory=dict)
    """The trace the events continue: the resume's or event's command that led to them (empty: the run's)."""


NODE_FAILED = "NodeFailed"
"""ApplicationError type of a node failure that no retry can fix (an expression, a refused call)."""
TENANT_RUNS_ACTIVITY = "drift.tenant_runs_allow"
"""Local activity a CHILD node asks before starting a run: 0 when the tenant may run one more, else its limit."""
TENANT_BUSY = "TenantBusy"
"""ApplicationError type of an activity refused because its tenant holds its share of the worker's slots:
the workflow waits and schedules it again (`drift_worker.fairness`)."""
HTTP_STATUS = "HttpStatus"
"""ApplicationError type of a non-2xx answer: retried by the node's retry policy."""
HTTP_ERROR = "HttpError"
"""ApplicationError type of a transport failure (connect, timeout): retried by the node's retry policy."""
