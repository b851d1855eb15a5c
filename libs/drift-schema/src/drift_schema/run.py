"""Shapes that cross into Temporal: a run's input, its queried state, and update arguments.

The dispatcher starts runs with `RunInput`; the worker's generic workflow takes
it and answers `RunSnapshot` to the `state` query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from drift_schema.api import WorkflowResponse
from drift_schema.base import Message
from drift_schema.testrun import RetryPoint, TestConfig, TestTrace, TraceEntry
from drift_schema.workflow import WorkflowDefinition

WORKFLOW_NAME = "GenericWorkflow"
STATE_QUERY = "state"
RUN_FAILED_ERROR = "DriftRunFailed"
"""Type of the error a run's Temporal workflow fails with when the run ends FAILED; its one detail is the run's
`RunSnapshot`, so Temporal's status (and its UI) agrees with Drift's and callers still get the run's state."""
RESUME_UPDATE = "resume"
EVENT_UPDATE = "event"
DISCONNECTED_UPDATE = "disconnected"
DEFAULT_TASK_QUEUE = "drift"


def temporal_id(tenant: str, workflow_id: str) -> str:
    """Temporal workflow ids are scoped by tenant, so two tenants may use the same public id."""
    return f"{tenant}~{workflow_id}"


def public_id(temporal_workflow_id: str) -> tuple[str, str]:
    tenant, _, workflow_id = temporal_workflow_id.partition("~")
    return tenant, workflow_id


class Carry(Message, frozen=True):
    """What a run hands to its next continue-as-new execution."""

    current_node: str
    context: dict[str, Any]
    seq: int
    node_visits: int
    command_id: str | None = None
    in_failure_path: bool = False
    callback_url: str | None = None
    disposition: Any = None
    command_trace: dict[str, str] | None = None
    """W3C trace context of the command being applied, so later states stay in its trace (None before it existed)."""
    descendants: int | None = None
    """CHILD runs the run may still cause (None before the bound existed: the run's own budget)."""
    retried: bool = False
    """Set by a retry (contract 8.2): the run announces RUNNING as it starts again."""
    skip_branches: list[str] | None = None
    """A retry from a PARALLEL node: branches that had completed, whose outputs `context` keeps."""
    test_trace: TestTrace | None = None
    """A test run's trace so far: it outlives continue-as-new."""

    @classmethod
    def retrying(
        cls, point: RetryPoint, command_id: str, callback_url: str | None, command_trace: dict[str, str] | None
    ) -> Carry:
        """What a retry (contract 8.2) hands the new execution: the closed run as it stood at `point`."""
        if point.node is None:
            raise ValueError("a retry point without a node has nothing to start from")
        return cls(
            point.node,
            point.context,
            point.seq,
            point.visits,
            command_id=command_id,
            callback_url=callback_url or point.callback_url,
            command_trace=command_trace,
            retried=True,
            skip_branches=point.skip_branches or None,
        )


DEFAULT_MAX_CONTEXT_BYTES = 1024 * 1024
"""A run's `$global`, encoded, stays under this: Temporal refuses any payload over 2 MiB (the run's result
and its continue-as-new input carry the context), so 1 MiB leaves room for the definition and the rest."""
DEFAULT_MAX_VISITS = 1_000_000
"""Node visits per run (across continue-as-new): a loop that never exits fails instead of running forever."""
DEFAULT_MAX_BRANCHES = 100
"""Branches of one PARALLEL node: each is a task of the run's workflow task, which must stay short."""
DEFAULT_MAX_DESCENDANTS = 50
"""CHILD runs a run may cause in all (children, their children, ...)."""


class RunLimits(Message, frozen=True):
    """Bounds of one run, pinned at start (so a replay decides as the first execution did)."""

    max_context_bytes: int = DEFAULT_MAX_CONTEXT_BYTES
    max_visits: int = DEFAULT_MAX_VISITS
    max_branches: int = DEFAULT_MAX_BRANCHES
    max_descendants: int = DEFAULT_MAX_DESCENDANTS


class MapSlice(Message, frozen=True):
    """Items `offset..offset+len(items)` of a large MAP node, run by a child run of the interpreter.

    Such a run walks only these items' branches: it publishes their node events under the parent
    run's workflow id, no status events, and is never listed; its snapshot's context holds the
    outputs (`outputs`, `failed`, `error`).
    """

    instance: str
    offset: int
    items: list[Any]
    tolerated: int
    """Failed items this slice may still have before the MAP fails (the parent's remaining tolerance)."""


class RunInput(Message, frozen=True):
    """Everything a run needs, pinned at start: the definition has every node inlined."""

    tenant: str
    workflow_id: str
    definition: WorkflowDefinition
    context: dict[str, Any]
    command_id: str
    enums: dict[str, Any] = msgspec.field(default_factory=dict)
    callback_url: str | None = None
    carry: Carry | None = None
    children: dict[str, WorkflowDefinition] = msgspec.field(default_factory=dict)
    """Child workflow definitions this run may start, pinned at start (`drift_schema.nodes.resolve_children`)."""
    depth: int = 0
    """How deep this run is in a chain of CHILD runs: 0 for a run started by a command."""
    limits: RunLimits = msgspec.field(default_factory=RunLimits)
    """This run's bounds; its CHILD runs get the same."""
    descendants: int | None = None
    """CHILD runs this run may still cause in all; None: `limits.max_descendants` (a run started by a command)."""
    test: TestConfig | None = None
    """Set on test runs (contract 8.3): mocks, selections and events; such a run publishes no events."""
    map_slice: MapSlice | None = None
    """Set on the child runs a large MAP node runs its items in (see MapSlice)."""


class RunSnapshot(WorkflowResponse, frozen=True):
    """The `state` query's answer: the run as a caller sees it, plus its `$global`."""

    context: dict[str, Any] = msgspec.field(default_factory=dict)
    seq: int = 0
    trace: list[TraceEntry] | None = None
    """Test runs only: every node visit, in visit order (the latest `MAX_TRACE_ENTRIES`)."""
    trace_omitted: int = 0
    """Test runs only: earlier visits left out of `trace`."""


class ResumeInput(Message, frozen=True):
    """The `resume` update's argument; `commandId` tags the states it leads to.

    A `callbackUrl` given with the resume replaces the run's callback from then on.
    """

    selected_options: dict[str, Any]
    command_id: str
    callback_url: str | None = None
    trace_context: dict[str, str] = msgspec.field(default_factory=dict)
    """W3C trace context of the command: the states it leads to are announced in the command's trace."""


TERMINATED_SEQ = 2**31
"""`seq` of the TERMINATED event the dispatcher publishes: above any status the run itself emitted."""


class EventInput(Message, frozen=True):
    """The `event` update's argument: resumes an `ON_EVENT` wait named `event`.

    The validator refuses it with `CONFLICT` when the run is not waiting for that event.
    """

    event: str
    payload: Any
    command_id: str
    trace_context: dict[str, str] = msgspec.field(default_factory=dict)
    """W3C trace context of the command: the states it leads to are announced in the command's trace."""


class DisconnectedInput(Message, frozen=True):
    """The `disconnected` update's argument: run one state against the current context.

    `parameters` are laid over the state's own parameter mapping; the run does not move.
    The validator refuses an unknown state with `NOT_FOUND`.
    """

    node: str
    parameters: dict[str, Any]
    command_id: str


class DisconnectedResult(Message, frozen=True):
    """The `disconnected` update's result (contract 5.5)."""

    workflow_id: str
    node: str
    status: str
    response: Any = None


def failed_run_snapshot(details: Sequence[Any]) -> RunSnapshot:
    """The `RunSnapshot` a FAILED run's workflow failed with (the details of a `RUN_FAILED_ERROR`)."""
    return msgspec.convert(details[0], RunSnapshot)
