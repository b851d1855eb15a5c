"""SUCCESS: completes the run with a disposition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drift_schema import expressions
from drift_schema.nodes import SuccessNode
from drift_schema.statuses import WorkflowStatus
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import PureNode, Step, Visit, node_of, render_field


class Success(PureNode):
    type = "SUCCESS"

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        node = node_of(task.node, SuccessNode)
        return NodeResult(
            output=render_field("output", node.output, bindings, bounds),
            disposition=render_field("disposition", node.disposition, bindings, bounds),
        )

    def step(self, visit: Visit, result: NodeResult) -> Step:
        return Step(
            next_node=None,
            output=result.output,
            write_output=result.output is not None,
            final_status=WorkflowStatus.COMPLETED,
            disposition=result.disposition,
        )
