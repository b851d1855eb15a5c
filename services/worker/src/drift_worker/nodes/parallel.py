"""PARALLEL: run branches concurrently inside the workflow; one failed branch cancels the others.

Each branch walks from its start instance along `nextNode` until an instance with
`end: true` or without `nextNode`; every instance's output lands in `$global`
as usual. Branches are asyncio tasks on the workflow's deterministic event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from drift_schema import expressions
from drift_schema.nodes import ParallelNode
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import Interpreter, NodeFailure, Step, Visit, WorkflowNode, node_of, run_together


class Parallel(WorkflowNode):
    type = "PARALLEL"

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        """Nothing to evaluate: the branches are instance names."""
        return NodeResult()

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        node = node_of(visit.node, ParallelNode)
        limit = run.run_input.limits.max_branches
        if len(node.branches) > limit:
            # Each branch is a task of one workflow task: thousands of them trip Temporal's deadlock
            # detector, which retries the task silently and leaves the run RUNNING forever.
            raise NodeFailure(f"a PARALLEL node runs at most {limit} branches; this one has {len(node.branches)}")
        failed = await run_together([asyncio.create_task(run.walk_branch(start)) for start in node.branches])
        if failed is not None:
            position, error = failed
            message = error.message if isinstance(error, NodeFailure) else str(error)
            raise NodeFailure(f"branch '{node.branches[position]}' failed: {message}")
        output = {"branches": list(node.branches)}
        await run.completed(visit, output)
        return Step(next_node=visit.next_node, output=output)
