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
from typing import Any, ClassVar

from temporalio import workflow

from drift_schema import expressions
from drift_schema.nodes import MapNode
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import Interpreter, NodeFailure, Step, Visit, render_field

MAX_ITEMS = 2_000
"""Items one MAP runs inside its run's history (each item visit is at least one history event)."""


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


class Map:
    type: ClassVar[str] = "MAP"
    announced_by_evaluate: ClassVar[bool] = False

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        """The items: `items` rendered, which must be a list."""
        node = task.node
        assert isinstance(node, MapNode)
        items = render_field("items", node.items, bindings, bounds)
        if not isinstance(items, list):
            raise expressions.ExpressionError(f"items: expected a list, got {_json_type(items)}")
        return NodeResult(output=items)

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        node = visit.node
        assert isinstance(node, MapNode)
        items = (await run.evaluate(visit)).output
        if len(items) > MAX_ITEMS:
            raise NodeFailure(f"a MAP node runs at most {MAX_ITEMS} items; items gave {len(items)}")
        width = min(node.max_concurrency, run.run_input.limits.max_branches, len(items))
        outputs: list[Any] = [None] * len(items)
        failures: list[int] = []
        pending = iter(range(len(items)))
        parent = CURRENT_SCOPE.get()

        async def worker() -> None:
            # A fixed set of workers takes items in order: deterministic, and no task per item.
            for index in pending:
                scope = ItemScope(item=items[index], index=index, parent=parent)
                token = CURRENT_SCOPE.set(scope)
                try:
                    await run.walk_branch(node.item_node)
                except NodeFailure as failure:
                    outputs[index] = {"error": failure.message}
                    failures.append(index)
                    if len(failures) > node.tolerated_failures:
                        raise NodeFailure(
                            f"{len(failures)} items failed, more than toleratedFailures ({node.tolerated_failures}); "
                            f"item {index}: {failure.message}"
                        ) from None
                else:
                    outputs[index] = scope.last
                finally:
                    CURRENT_SCOPE.reset(token)

        workers = [asyncio.create_task(worker()) for _ in range(width)]
        try:
            if workers:
                await workflow.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            for task in workers:
                task.cancel()
            raise
        failed = next((task for task in workers if task.done() and not task.cancelled() and task.exception()), None)
        if failed is not None:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            error = failed.exception()
            raise error if isinstance(error, NodeFailure) else NodeFailure(str(error))
        await run.completed(visit, outputs)
        return Step(next_node=visit.next_node, output=outputs)


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
