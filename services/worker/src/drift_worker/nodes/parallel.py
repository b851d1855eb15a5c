"""PARALLEL: run branches concurrently inside the workflow; one failed branch cancels the others.

Each branch walks from its start instance along `nextNode` until an instance with
`end: true` or without `nextNode`; every instance's output lands in `$global`
as usual. Branches are asyncio tasks on the workflow's deterministic event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from temporalio import workflow

from drift_schema import expressions
from drift_schema.nodes import ParallelNode
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import Interpreter, NodeFailure, Step, Visit


class Parallel:
    type: ClassVar[str] = "PARALLEL"
    announced_by_evaluate: ClassVar[bool] = False

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        """Nothing to evaluate: the branches are instance names."""
        return NodeResult()

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        node = visit.node
        assert isinstance(node, ParallelNode)
        limit = run.run_input.limits.max_branches
        if len(node.branches) > limit:
            # Each branch is a task of one workflow task: thousands of them trip Temporal's deadlock
            # detector, which retries the task silently and leaves the run RUNNING forever.
            raise NodeFailure(f"a PARALLEL node runs at most {limit} branches; this one has {len(node.branches)}")
        tasks = [asyncio.create_task(run.walk_branch(start)) for start in node.branches]
        try:
            if tasks:
                await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            # This node is itself a cancelled branch of an outer PARALLEL: take the inner branches down too.
            for task in tasks:
                task.cancel()
            raise
        failed = next((task for task in tasks if _failed(task)), None)
        if failed is not None:
            for task in tasks:
                task.cancel()
            # Let cancelled branches unwind (their activities are cancelled too) before the node fails.
            await asyncio.gather(*tasks, return_exceptions=True)
            branch = node.branches[tasks.index(failed)]
            error = failed.exception()
            message = error.message if isinstance(error, NodeFailure) else str(error)
            raise NodeFailure(f"branch '{branch}' failed: {message}")
        output = {"branches": list(node.branches)}
        await run.completed(visit, output)
        return Step(next_node=visit.next_node, output=output)


def _failed(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None
