"""Fields every node definition has (contract 4.1), and the edges a node says it leaves by."""

from __future__ import annotations

import enum
from typing import Annotated, Any, ClassVar, NamedTuple

import msgspec

from drift_schema.base import Shape
from drift_schema.ids import DefinitionId

NodeId = DefinitionId


class EdgeKind(enum.StrEnum):
    """What an edge of a workflow graph is: how a run (or a branch of it) gets from one state to the next."""

    NEXT = "next"
    """The state's own `nextNode` (every node type has it)."""
    CHOICE = "choice"
    """A BRANCH choice's `nextNode`, taken when its rule is true."""
    DEFAULT = "default"
    """A BRANCH's `defaultNode`, taken when no rule is true."""
    BRANCH = "branch"
    """The start of a PARALLEL branch."""
    ITEM = "item"
    """The start of a MAP's per-item branch."""

    @property
    def starts_branch(self) -> bool:
        """Whether the edge starts a branch of its own (PARALLEL, MAP) rather than continuing the walk."""
        return self in (EdgeKind.BRANCH, EdgeKind.ITEM)


class Edge(NamedTuple):
    """One outgoing edge of a state.

    `pointer` is the JSON pointer of the field naming the target, relative to the node
    definition (for NEXT: relative to the state). `position` is the edge's position among
    the node's edges of its kind (a choice's or a branch's index); `rule` is a CHOICE's rule.
    """

    pointer: str
    target: str
    kind: EdgeKind
    position: int = 0
    rule: Any = None


class RetryPolicy(Shape, frozen=True):
    """Retry policy of a node, mapped onto Temporal's retry policy."""

    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    initial_interval_ms: Annotated[int, msgspec.Meta(ge=1)] = 1000
    backoff_coefficient: Annotated[float, msgspec.Meta(ge=1.0)] = 2.0
    max_interval_ms: Annotated[int, msgspec.Meta(ge=1)] | None = None


class NodeBase(Shape, tag_field="type", frozen=True):
    """Common node fields; each node type adds its own, sets its `type` tag and describes itself.

    Every node type declares, in its own class, `ends_run` (whether reaching it finishes the
    run) and `edges()` (the edges it adds to its state's `nextNode`), so graph checks and
    drawings never need to know node types by name; `steers` and `branch_faults` are
    overridden by the types they concern.
    """

    id: NodeId
    name: str | None = None
    version: str | None = None
    parameters: list[str] = msgspec.field(default_factory=list)
    comment: str | None = None
    timeout_ms: Annotated[int, msgspec.Meta(ge=1)] | None = None
    retry: RetryPolicy | None = None

    ends_run: ClassVar[bool] = False
    """Reaching a node of this type finishes the run (SUCCESS, FAILURE)."""
    steers: ClassVar[bool] = False
    """A node of this type decides where the run goes, so a test run's mock cannot stand in for it."""

    def edges(self) -> list[Edge]:
        """The edges this node leaves by besides its state's `nextNode` (none unless the type says so)."""
        return []

    def branch_faults(self, max_branches: int, pointer: str = "") -> list[tuple[str, str]]:
        """(pointer, message) of each way this node would run more than `max_branches` branches at once."""
        return []
