"""MAP: one branch per item of a list, at most `maxConcurrency` at once, inside the run.

Each item's branch is walked as a PARALLEL branch is (`walk_branch` from `itemNode`), in an
`ItemScope` carried by a context variable: asyncio tasks copy it, so a PARALLEL (or a MAP) inside
an item's branch stays in that item. While a scope is current the interpreter:

- evaluates with `$global` = the run's context overlaid with the outputs of the enclosing items'
  nodes (innermost last), and binds `$item` and `$index`;
- writes node outputs into the item's scope instead of `$global` (the MAP node's own output, the
  list, lands in `$global` as any output does);
- names the item in node events: instance `name[index]` (`name[2][5]` in a nested MAP).

Bounds: `maxConcurrency` is capped by the run's PARALLEL branch limit (`RunLimits.max_branches`);
every node visit of every item counts towards the run's visit budget; items run inside the run's
own history, so a MAP has at most `MAX_ITEMS` items (larger lists fail the node, naming the bound).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

from drift_schema import expressions
from drift_schema.nodes import MapNode
from drift_schema.run import WORKFLOW_NAME, MapSlice, RunSnapshot, temporal_id
from drift_schema.statuses import WorkflowStatus
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import (
    Interpreter,
    NodeFailure,
    Step,
    Visit,
    WorkflowNode,
    node_of,
    render_field,
    run_together,
)

MAX_ITEMS = 100_000
"""Items one MAP node runs at most (its output list must also fit the run's context bound)."""
SLICE_ITEMS = 500
"""Up to this many items run inside the MAP's own run; more run in child runs of this many each, so no
history holds more than one slice's visits (each item visit is at least one history event)."""
SLICE_CANNOT_WAIT = (
    f"an item of a MAP over more than {SLICE_ITEMS} items cannot wait for a person or an event "
    "(resumes and events reach the run, not the item's slice)"
)


@dataclass(slots=True)
class ItemScope:
    """One item's branch: its item, position and the outputs of its own nodes."""

    item: Any
    index: int
    parent: ItemScope | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    last: Any = None
    """The output of the branch's last node so far (the item's entry in the MAP's output)."""

    def overlay(self, context: dict[str, Any]) -> dict[str, Any]:
        """`$global` inside this item: the run's context, then each enclosing item's outputs, this one's last."""
        chain: list[ItemScope] = []
        scope: ItemScope | None = self
        while scope is not None:
            chain.append(scope)
            scope = scope.parent
        merged = dict(context)
        for outer in reversed(chain):
            merged.update(outer.outputs)
        return merged

    def label(self, instance: str) -> str:
        """The instance name node events carry: `name[index]`, outer items' indexes first."""
        indexes: list[int] = []
        scope: ItemScope | None = self
        while scope is not None:
            indexes.append(scope.index)
            scope = scope.parent
        return instance + "".join(f"[{index}]" for index in reversed(indexes))

    def bindings(self) -> dict[str, Any]:
        return {"item": self.item, "index": self.index}


CURRENT_SCOPE: contextvars.ContextVar[ItemScope | None] = contextvars.ContextVar("drift_map_item", default=None)


class Map(WorkflowNode):
    type = "MAP"

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        """The items: `items` rendered, which must be a list."""
        node = node_of(task.node, MapNode)
        items = render_field("items", node.items, bindings, bounds)
        if not isinstance(items, list):
            raise expressions.ExpressionError(f"items: expected a list, got {_json_type(items)}")
        return NodeResult(output=items)

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        node = node_of(visit.node, MapNode)
        items = (await run.evaluate(visit)).output
        if len(items) > MAX_ITEMS:
            raise NodeFailure(f"a MAP node runs at most {MAX_ITEMS} items; items gave {len(items)}")
        if len(items) <= SLICE_ITEMS:
            outputs, _ = await run_items(run, node, items, 0, node.tolerated_failures)
        else:
            outputs = await self._in_slices(run, visit, node, items)
        await run.completed(visit, outputs)
        return Step(next_node=visit.next_node, output=outputs)

    async def _in_slices(self, run: Interpreter, visit: Visit, node: MapNode, items: list[Any]) -> list[Any]:
        """Items in child runs of `SLICE_ITEMS` each, one slice at a time (so `maxConcurrency` still holds).

        Each child's history holds only its slice; this run's holds a few events per slice.
        """
        pinned = run.run_input
        scope = CURRENT_SCOPE.get()
        context = run.context if scope is None else scope.overlay(run.context)
        base_id = run.child_workflow_id(visit)
        outputs: list[Any] = []
        failed = 0
        for number, offset in enumerate(range(0, len(items), SLICE_ITEMS)):
            part = MapSlice(
                instance=visit.instance,
                offset=offset,
                items=items[offset : offset + SLICE_ITEMS],
                tolerated=node.tolerated_failures - failed,
            )
            # The slice spends the run's budgets (visits, CHILD runs): it gets what is left, reports what it used.
            limits = msgspec.structs.replace(pinned.limits, max_visits=run.visits_left())
            child = msgspec.structs.replace(
                pinned,
                context=context,
                carry=None,
                descendants=run.descendants_left(),
                callback_url=None,
                map_slice=part,
                limits=limits,
            )
            try:
                snapshot = await workflow.execute_child_workflow(
                    WORKFLOW_NAME,
                    child,
                    id=temporal_id(pinned.tenant, f"{base_id}-m{number}"),
                    result_type=RunSnapshot,
                    parent_close_policy=workflow.ParentClosePolicy.TERMINATE,
                    memo={"tenant": pinned.tenant, "parent": pinned.workflow_id, "mapSlice": offset},
                )
            except ChildWorkflowError as error:
                raise NodeFailure(
                    f"items {offset}..{offset + len(part.items) - 1} did not complete: {error.cause}"
                ) from None
            result = snapshot.context
            run.spend_visits(int(result.get("visits", 0)))
            run.spend_descendants(int(result.get("descendants", 0)))
            if result.get("error"):
                raise NodeFailure(str(result["error"]))
            outputs += result["outputs"]
            failed += int(result["failed"])
        return outputs


async def run_items(
    run: Interpreter, node: MapNode, items: list[Any], offset: int, tolerated: int
) -> tuple[list[Any], int]:
    """Walk each item's branch, at most `maxConcurrency` at once; (outputs in item order, failed items).

    NodeFailure once more than `tolerated` items failed (the remaining items are cancelled).
    """
    width = min(node.max_concurrency, run.run_input.limits.max_branches, len(items))
    outputs: list[Any] = [None] * len(items)
    failures: list[int] = []
    pending = iter(range(len(items)))
    parent = CURRENT_SCOPE.get()

    async def worker() -> None:
        # A fixed set of workers takes items in order: deterministic, and no task per item.
        for position in pending:
            index = offset + position
            scope = ItemScope(item=items[position], index=index, parent=parent)
            token = CURRENT_SCOPE.set(scope)
            try:
                await run.walk_branch(node.item_node)
            except NodeFailure as failure:
                outputs[position] = {"error": failure.message}
                failures.append(index)
                if len(failures) > tolerated:
                    raise NodeFailure(
                        f"{len(failures) + node.tolerated_failures - tolerated} items failed, more than "
                        f"toleratedFailures ({node.tolerated_failures}); item {index}: {failure.message}"
                    ) from None
            else:
                outputs[position] = scope.last
            finally:
                CURRENT_SCOPE.reset(token)

    failed = await run_together([asyncio.create_task(worker()) for _ in range(width)])
    if failed is not None:
        _, error = failed
        raise error if isinstance(error, NodeFailure) else NodeFailure(str(error))
    return outputs, len(failures)


async def run_slice(run: Interpreter, part: MapSlice) -> RunSnapshot:
    """The whole of a slice run (see `MapSlice`): its items' branches, and their outputs as its context."""
    state = run.run_input.definition.states[part.instance]
    node = state.node_definition
    assert isinstance(node, MapNode)
    result: dict[str, Any]
    budget, descendants = run.visits_left(), run.descendants_left()
    try:
        outputs, failed = await run_items(run, node, part.items, part.offset, part.tolerated)
        result = {"outputs": outputs, "failed": failed, "error": None}
        size = len(msgspec.json.encode(result))
        if size > run.run_input.limits.max_context_bytes:
            # Checked here: a result past Temporal's payload limit would never complete this child.
            result = {
                "outputs": [],
                "failed": failed,
                "error": f"the outputs of items {part.offset}.. are {size} "
                f"bytes, over the run's context limit of {run.run_input.limits.max_context_bytes} bytes",
            }
    except NodeFailure as failure:
        result = {"outputs": [], "failed": 0, "error": failure.message}
    result["visits"] = budget - run.visits_left()
    result["descendants"] = descendants - run.descendants_left()
    return RunSnapshot(workflow_id=run.run_input.workflow_id, workflow_status=WorkflowStatus.COMPLETED, context=result)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an object"
