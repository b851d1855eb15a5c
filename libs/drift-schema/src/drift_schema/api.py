"""Bodies of the gateway's runtime API (contract 5) and problem details (contract 2)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from drift_schema.base import Message, Shape

# Re-exported: the id shapes live in drift_schema.ids.
from drift_schema.ids import TENANT_PATTERN as TENANT_PATTERN
from drift_schema.ids import WORKFLOW_ID_PATTERN as WORKFLOW_ID_PATTERN
from drift_schema.ids import DefinitionId
from drift_schema.ids import WorkflowId as WorkflowId
from drift_schema.statuses import WorkflowStatus
from drift_schema.workflow import ACTIVE

DEFAULT_SYNC_TIMEOUT_MS = 30_000
SyncTimeoutMs = Annotated[int, msgspec.Meta(ge=0, le=600_000)]


VersionText = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
"""`SNAPSHOT`, `LATEST`, `ACTIVE` or a number: never thousands of digits (int() of those is refused)."""


class WorkflowRef(Shape, frozen=True):
    id: DefinitionId
    version: VersionText = ACTIVE


class StartRequest(Shape, frozen=True):
    workflow: WorkflowRef
    workflow_id: WorkflowId | None = None
    params: Any = None
    issue_detail: Any = None
    customer: Any = None
    order_details: Any = None
    callback_url: str | None = None
    sync_timeout_ms: SyncTimeoutMs | None = None


class ViewResponse(Shape, frozen=True):
    selected_options: dict[str, Any] = msgspec.field(default_factory=dict)


class ResumeRequest(Shape, frozen=True):
    view_response: ViewResponse
    callback_url: str | None = None
    sync_timeout_ms: SyncTimeoutMs | None = None


class WorkflowResponse(Message, frozen=True):
    """What every runtime call answers with, and what status events carry."""

    workflow_id: str
    workflow_status: WorkflowStatus
    current_node: str | None = None
    disposition: Any = None
    error_message: str | None = None
    view: Any = None


class WorkflowDetail(WorkflowResponse, frozen=True):
    """`GET /v3/workflow/{id}`: the response plus the run's `$global`, and the definition it runs.

    `definitionId`/`definitionVersion` come from the run's search attributes while Temporal holds
    the run (null otherwise), so a client can draw the run on its graph without being told which.
    """

    context: Any = None
    definition_id: str | None = None
    definition_version: str | None = None


class AcceptedResponse(Message, frozen=True):
    """Async-mode answer."""

    workflow_id: str
    workflow_status: WorkflowStatus


class TerminateResponse(Message, frozen=True):
    workflow_id: str
    workflow_status: WorkflowStatus


class DisconnectedRequest(Shape, frozen=True):
    """`POST /v3/workflow/{id}/disconnected-node/execute` (contract 5.5)."""

    node: str
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


class ProblemError(Message, frozen=True):
    pointer: str
    message: str


class Problem(Message, omit_defaults=True, frozen=True):
    """RFC 9457 problem details."""

    title: str
    status: int
    type: str = "about:blank"
    detail: str | None = None
    errors: list[ProblemError] | None = None


class TimelineEntry(Message, frozen=True):
    """One node visit of a run, as its node event told it."""

    instance_name: str
    node_type: str
    status: str
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: int | None = None
    attempt: int = 1
    error: str | None = None


class Timeline(Message, frozen=True):
    """`GET /v3/workflow/{id}/timeline`: the run's node events in order."""

    workflow_id: str
    nodes: list[TimelineEntry]
