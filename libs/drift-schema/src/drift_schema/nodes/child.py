"""CHILD node: starts another workflow definition as a child run.

A run's child definitions are pinned when it starts, like its own: the
dispatcher calls `resolve_children` with its definition fetcher and puts the
result in `RunInput.children`, keyed by `child_key(id, version)` exactly as the
CHILD nodes name them. The map holds the whole closure (children of children
too), so a child run gets the same map and its own CHILD nodes resolve from it.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from drift_schema.nodes.common import Edge, NodeBase

if TYPE_CHECKING:
    from drift_schema.workflow import WorkflowDefinition

MAX_PINNED_CHILDREN = 64
"""At most this many distinct child definitions are pinned for one run (a guard against runaway closures)."""


class ExecutionMode(enum.StrEnum):
    ASYNC = "ASYNC"
    SYNC = "SYNC"


class ChildNode(NodeBase, tag="CHILD", kw_only=True, frozen=True):
    child_workflow_id: str
    child_workflow_version: str = "ACTIVE"
    execution_mode: ExecutionMode = ExecutionMode.SYNC
    params: Any = None

    ends_run: ClassVar[bool] = False

    def edges(self) -> list[Edge]:
        """None of its own: the child runs its own graph; the parent goes on along its state's `nextNode`."""
        return []


def child_key(workflow_id: str, version: str) -> str:
    """The key of a pinned child definition: the id and the version as the CHILD node wrote them."""
    return f"{workflow_id}@{version}"


def child_references(definition: WorkflowDefinition) -> Iterator[tuple[str, str]]:
    """(childWorkflowId, childWorkflowVersion) of every CHILD node the definition inlines."""
    for state in definition.states.values():
        node = state.node_definition
        if isinstance(node, ChildNode):
            yield node.child_workflow_id, node.child_workflow_version


async def resolve_children(
    definition: WorkflowDefinition,
    fetch: Callable[[str, str], Awaitable[WorkflowDefinition | None]],
    limit: int = MAX_PINNED_CHILDREN,
) -> dict[str, WorkflowDefinition]:
    """Every child definition reachable from `definition`, fetched once each, keyed by `child_key`.

    `fetch(id, version)` answers the definition with its nodes inlined, or None when
    it does not exist; a missing child is left out (its CHILD node then fails when it
    runs, rather than refusing a run that may never reach it). Cycles are visited once;
    past `limit` distinct references the rest are left out the same way.
    """
    pinned: dict[str, WorkflowDefinition] = {}
    seen: set[str] = set()
    pending = list(child_references(definition))
    while pending:
        workflow_id, version = pending.pop()
        key = child_key(workflow_id, version)
        if key in seen:
            continue
        seen.add(key)
        if len(seen) > limit:
            break
        child = await fetch(workflow_id, version)
        if child is None:
            continue
        pinned[key] = child
        pending.extend(child_references(child))
    return pinned
