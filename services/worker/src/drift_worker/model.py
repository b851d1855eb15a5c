"""What the interpreter workflow hands its node activities, and what they answer."""

from __future__ import annotations

from typing import Any

import msgspec

from drift_schema.base import Message
from drift_schema.events import NodeEvent, WorkflowEvent
from drift_schema.nodes import NodeDefinition
from drift_schema.workflow import State


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


class SegmentTask(Message, frozen=True):
    """A run of consecutive pure nodes to evaluate in one local activity (see `drift_worker.segments`).

    The segment starts at `start` and follows the graph through `states` (the pure states reachable
    from it, nothing else) until a node that is not pure, a final status, a failure, or one of its
    bounds. `context` holds the keys of `$global` those states may read (all of it when one of their
    expressions reads `$global` as a whole); `context_bytes` and `context_sizes` (the encoded size of
    each key the segment may write) let it stop where the run's context bound would be passed.
    """

    tenant: str
    workflow_id: str
    definition_id: str
    definition_version: str | None
    start: str
    states: dict[str, State]
    context: dict[str, Any]
    enums: dict[str, Any]
    event_prefix: str
    """Node event ids are `<event_prefix>:n<visit number>`, as the workflow names them."""
    first_visit: int
    """The visit number of the segment's first node."""
    max_visits: int
    context_bytes: int
    context_sizes: dict[str, int]
    max_context_bytes: int
    lead: EmitBatch | None = None
    """Events the run deferred to this activity, published before the segment's own (its RUNNING event)."""
    end: EmitBatch | None = None
    """The run's final status event as the run stands before the segment (its next `seq`, its whole context):
    when a visit ends the run, the activity fills it in (`drift_worker.segments.run_end`) and publishes it
    after the nodes' events. None: the workflow publishes the run's end itself."""


class SegmentVisit(Message, frozen=True):
    """One visit a segment made and announced (COMPLETED): its instance and its evaluation."""

    instance: str
    result: NodeResult


class SegmentResult(Message, frozen=True):
    """What a segment did: its completed visits in order, then at most one failed visit."""

    visits: list[SegmentVisit] = msgspec.field(default_factory=list)
    failed: str | None = None
    """The instance whose evaluation failed after the completed visits (not announced: the workflow does)."""
    error: str | None = None
    attempt: int = 1
    ended: bool = False
    """The activity published the run's final status event (`SegmentTask.end`, filled in) after the nodes' events."""
    finished_at: str | None = None
    """When the activity finished its visits: the run's next node does not start before it (the workflow's own
    clock stands still for the whole workflow task, this local activity included)."""


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
