"""A run's stored context: what the notifier writes at every stable state and the gateway reads back.

Temporal forgets a run after its retention period; the dsl-store's run-context
store (`PUT`/`GET /runs/{workflowId}`) keeps the last stable state of each run
so that `GET /v3/workflow/{workflowId}` still answers afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from drift_schema.api import WorkflowId
from drift_schema.base import Message
from drift_schema.statuses import WorkflowStatus

RunId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Seq = Annotated[int, msgspec.Meta(ge=0)]


class RunContext(Message, frozen=True):
    """One stable state of one run.

    `seq` orders the states of a run (`runId`, Temporal's run id): the store
    keeps the highest `seq` per run, so a late, older write never replaces a
    newer one. `updatedAt` orders different runs of the same `workflowId`.
    """

    workflow_id: WorkflowId
    workflow_status: WorkflowStatus
    run_id: RunId
    seq: Seq
    updated_at: datetime
    current_node: str | None = None
    disposition: Any = None
    error_message: str | None = None
    view: Any = None
    context: dict[str, Any] = msgspec.field(default_factory=dict)

    def updated_at_utc(self) -> datetime:
        """`updatedAt` as an aware UTC time; a time without an offset is taken as UTC."""
        moment = self.updated_at
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
