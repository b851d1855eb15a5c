"""Workflow definitions (contract 4.2) and version listings (4.3)."""

from __future__ import annotations

from typing import Any

import msgspec

from drift_schema.base import Shape
from drift_schema.nodes import NodeDefinition, NodeId

SNAPSHOT = "SNAPSHOT"
LATEST = "LATEST"
ACTIVE = "ACTIVE"
VERSION_POINTERS = frozenset({SNAPSHOT, LATEST, ACTIVE})


class State(Shape, frozen=True):
    """One node instance of a workflow graph: a referenced or inlined node plus its wiring."""

    resource_id: str | None = None
    resource_version: str = LATEST
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    next_node: str | None = None
    end: bool = False
    node_definition: NodeDefinition | None = None


class WorkflowDefinition(Shape, kw_only=True, frozen=True):
    id: NodeId
    states: dict[str, State]
    start_node: str | None = None
    comment: str | None = None
    version: str | None = None
    default_failure_node: str | None = None
    post_workflow_completion_nodes: list[str] = msgspec.field(default_factory=list)


class VersionInfo(Shape, frozen=True):
    version: str
    published_at: str
    active: bool
    weight: int
    """Share of `ACTIVE` starts this version gets, in percent (the active version 100 without a traffic split)."""


class Bundle(Shape, frozen=True):
    """A bundle file: node and workflow definitions loaded together (contract 7)."""

    node_definitions: list[NodeDefinition] = msgspec.field(default_factory=list)
    workflow_definitions: list[WorkflowDefinition] = msgspec.field(default_factory=list)


MAX_VERSION_DIGITS = 18


def is_published_version(version: str) -> bool:
    """Published versions are positive integers written as strings (ASCII digits, at most 18 of them).

    The bound keeps `int()` cheap and in range of every store's integer column: a 5,000-digit
    `?version=` is simply no version, never a 500.
    """
    return len(version) <= MAX_VERSION_DIGITS and version.isascii() and version.isdigit() and int(version) > 0
