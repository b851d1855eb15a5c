"""The one interface every node type implements.

Each node type has two halves. `evaluate` runs inside a (local) activity, off
the workflow sandbox: it reads expressions and may be slow or fail. `execute`
runs inside the workflow and decides what the run does with the result: go on,
wait, or finish. Both halves must be deterministic for the workflow's sake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from drift_schema import expressions
from drift_schema.nodes import NodeDefinition
from drift_schema.statuses import WorkflowStatus
from drift_schema.workflow import State

from drift_worker.model import NodeResult, NodeTask


@dataclass(slots=True)
class Step:
    """What the interpreter does after a node: go to `next_node`, or finish with `final_status`."""

    next_node: str | None
    output: Any = None
    write_output: bool = True
    final_status: WorkflowStatus | None = None
    disposition: Any = None
    error_message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Interpreter(Protocol):
    """What a node's workflow half may ask of the running interpreter."""

    async def evaluate(self, instance: str, state: State, node: NodeDefinition) -> NodeResult: ...

    async def wait_for_input(
        self, instance: str, node: NodeDefinition, result: NodeResult
    ) -> dict[str, Any]: ...


class NodeKind(Protocol):
    type: ClassVar[str]

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        """Activity half: compute the node's result from its expressions."""
        ...

    async def execute(self, run: Interpreter, instance: str, state: State, node: NodeDefinition) -> Step:
        """Workflow half: turn the result into the run's next step."""
        ...


class PureNode:
    """A node computed entirely by its evaluation: one local activity, then on along `nextNode`."""

    type: ClassVar[str] = ""

    async def execute(self, run: Interpreter, instance: str, state: State, node: NodeDefinition) -> Step:
        result = await run.evaluate(instance, state, node)
        return self.step(state, result)

    def step(self, state: State, result: NodeResult) -> Step:
        return Step(next_node=None if state.end else state.next_node, output=result.output)
