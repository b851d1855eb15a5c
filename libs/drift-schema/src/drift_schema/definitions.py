"""Shapes of the dsl-store's definition management routes (contract 10), shared by the service and clients."""

from __future__ import annotations

from drift_schema.base import Message


class WorkflowSummary(Message, frozen=True):
    """A workflow definition in a listing."""

    id: str
    comment: str | None
    latest_version: str | None
    active_version: str | None
    has_snapshot: bool
    updated_at: str


class NodeSummary(Message, frozen=True):
    """A node definition in a listing."""

    id: str
    type: str | None
    comment: str | None
    latest_version: str | None
    active_version: str | None
    has_snapshot: bool
    updated_at: str


DefinitionSummary = WorkflowSummary | NodeSummary


class WorkflowPage(Message, frozen=True):
    """`GET /workflowDefinition`: a page of workflows sorted by id; `nextPageToken` is null on the last page."""

    items: list[WorkflowSummary]
    next_page_token: str | None


class NodePage(Message, frozen=True):
    """`GET /nodeDefinition`: a page of nodes sorted by id; `nextPageToken` is null on the last page."""

    items: list[NodeSummary]
    next_page_token: str | None


class Validation(Message, frozen=True):
    """`POST /workflowDefinition/validate` of a valid workflow: the states no edge reaches (allowed)."""

    valid: bool
    disconnected_states: list[str]


class ImportResult(Message, frozen=True):
    """`POST /bundle`: the ids of the bundle's definitions by what the import did to them."""

    created: list[str]
    unchanged: list[str]
    updated: list[str]
