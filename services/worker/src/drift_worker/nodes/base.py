"""The one interface every node type implements.

Each node type has two halves. `evaluate` runs inside a (local) activity, off
the workflow sandbox: it reads expressions and may be slow or fail. `execute`
runs inside the workflow and decides what the run does with the result: go on,
wait, or finish. Both halves must be deterministic for the workflow's sake.

A node's workflow half talks to the running interpreter only through the
`Interpreter` protocol below, one `Visit` (one execution of one state) at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from temporalio import workflow

from drift_schema import expressions
from drift_schema.nodes import NodeDefinition
from drift_schema.run import RunInput
from drift_schema.statuses import WorkflowStatus
from drift_schema.workflow import State, WorkflowDefinition
from drift_worker import fastpath
from drift_worker.model import NodeResult, NodeTask


class NodeFailure(Exception):
    """A node failed for a reason the run should route (to `defaultFailureNode`, or to FAILED)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Visit:
    """One execution of one state; its `number` names its events and its HTTP idempotency key."""

    instance: str
    state: State
    node: NodeDefinition
    number: int
    started_at: str
    parameters: dict[str, Any]
    scope: Any = None
    """The MAP item this visit runs in (`drift_worker.nodes.map.ItemScope`), None outside any."""

    @property
    def next_node(self) -> str | None:
        """Where the run goes after this visit when the node itself does not choose."""
        return None if self.state.end else self.state.next_node


@dataclass(slots=True)
class Step:
    """What the interpreter does after a node: go to `next_node`, or finish with `final_status`."""

    next_node: str | None
    output: Any = None
    write_output: bool = True
    final_status: WorkflowStatus | None = None
    disposition: Any = None
    error_message: str | None = None


class Interpreter(Protocol):
    """What a node's workflow half may ask of the running interpreter."""

    @property
    def patched(self) -> Callable[[str], bool]:
        """Whether this execution runs the code patched in under a name (`drift_worker.patches`)."""
        ...

    @property
    def run_input(self) -> RunInput:
        """The run's pinned input (definition, child definitions, enums)."""
        ...

    @property
    def context(self) -> dict[str, Any]:
        """The run's `$global`."""
        ...

    @property
    def command_id(self) -> str | None:
        """The command that led to the run's current state."""
        ...

    def task(self, visit: Visit) -> NodeTask:
        """Everything an activity needs to evaluate this visit."""
        ...

    def summary(self, visit: Visit) -> str:
        """The summary Temporal shows for this visit's activities: the node's instance and type."""
        ...

    async def evaluate(self, visit: Visit) -> NodeResult:
        """Evaluate the node's expressions in a local activity (one history marker)."""
        ...

    async def wait_for_input(self, visit: Visit, result: NodeResult, timeout_ms: int | None = None) -> dict[str, Any]:
        """Go WAITING with the rendered view until a valid resume arrives; answer its selections.

        NodeFailure when `timeout_ms` passes first.
        """
        ...

    async def wait_for_event(self, visit: Visit, event: str, timeout_seconds: float | None) -> Any:
        """Go WAITING until the `event` update names `event`; answer its payload (NodeFailure on timeout)."""
        ...

    async def sleep(self, visit: Visit, seconds: float) -> None:
        """Go SCHEDULER_WAITING for `seconds` on a Temporal timer (at once when not positive)."""
        ...

    async def completed(self, visit: Visit, output: Any) -> None:
        """Announce the visit's completion (for nodes whose activity did not)."""
        ...

    def visits_left(self) -> int:
        """Node visits the run may still make: its visit budget less the visits made."""
        ...

    def spend_visits(self, count: int) -> None:
        """Count `count` visits made on the run's behalf elsewhere (a MAP's slice runs)."""
        ...

    def descendants_left(self) -> int:
        """CHILD runs the run may still cause (its descendant budget)."""
        ...

    def spend_descendants(self, count: int) -> None:
        """Count `count` CHILD runs caused on the run's behalf elsewhere (a MAP's slice runs)."""
        ...

    def take_descendants(self, child: WorkflowDefinition) -> int:
        """Reserve one CHILD run of the run's descendant budget (NodeFailure when spent); the child's budget."""
        ...

    async def walk_branch(self, start: str) -> None:
        """Run states from `start` along `nextNode` until `end` or no `nextNode` (NodeFailure on failure)."""
        ...

    def child_workflow_id(self, visit: Visit) -> str:
        """The public workflow id of the child run this visit starts: deterministic and unique."""
        ...


class NodeKind(Protocol):
    type: ClassVar[str]
    announced_by_evaluate: ClassVar[bool]
    """Whether the `evaluate_node` activity publishes the node's COMPLETED event itself."""

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        """Activity half: compute the node's result from its expressions."""
        ...

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        """Workflow half: turn the result into the run's next step."""
        ...


def render_field(name: str, value: Any, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> Any:
    """Render one field of a node, naming the field when one of its expressions fails."""
    try:
        return fastpath.evaluate(value, bindings, bounds)
    except expressions.ExpressionError as error:
        raise expressions.ExpressionError(f"{name}: {error.message}", error.position, error.code) from None


async def run_together(tasks: list[asyncio.Task[Any]]) -> tuple[int, BaseException] | None:
    """Wait for all `tasks`, or for the first to fail: then cancel the rest and name the failed one and its error.

    None when every task finished. The failed task's position and error are returned only once the cancelled
    tasks have unwound (their activities are cancelled too), so the node fails after its work is taken down.
    """
    try:
        if tasks:
            await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        # The node is itself a cancelled branch of an outer PARALLEL: take its own tasks down too.
        for task in tasks:
            task.cancel()
        raise
    for position, task in enumerate(tasks):
        error = task.exception() if task.done() and not task.cancelled() else None
        if error is not None:
            for other in tasks:
                other.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return position, error
    return None


Kind = TypeVar("Kind", bound=NodeDefinition)


def node_of(node: NodeDefinition, kind: type[Kind]) -> Kind:
    """`node` as the node type `kind`: a node kind is only ever handed nodes of its own type."""
    assert isinstance(node, kind)
    return node


class WorkflowNode:
    """A node whose workflow half announces its own COMPLETED event, after it has decided the run's step."""

    type: ClassVar[str] = ""
    announced_by_evaluate: ClassVar[bool] = False


class PureNode:
    """A node computed entirely by its evaluation: one local activity, then on along `nextNode`."""

    type: ClassVar[str] = ""
    announced_by_evaluate: ClassVar[bool] = True

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        result = await run.evaluate(visit)
        return self.step(visit, result)

    def step(self, visit: Visit, result: NodeResult) -> Step:
        return Step(next_node=visit.next_node, output=result.output)
