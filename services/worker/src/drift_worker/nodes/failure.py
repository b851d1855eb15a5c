"""FAILURE: fails the run with an error message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drift_schema import expressions
from drift_schema.nodes import FailureNode
from drift_schema.statuses import WorkflowStatus
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import PureNode, Step, Visit, node_of, render_field


class Failure(PureNode):
    type = "FAILURE"

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        node = node_of(task.node, FailureNode)
        error = render_field("error", node.error, bindings, bounds)
        message = error if isinstance(error, str) else None if error is None else str(error)
        return NodeResult(output={"error": message}, error=message)

    def step(self, visit: Visit, result: NodeResult) -> Step:
        return Step(
            next_node=None,
            output=result.output,
            final_status=WorkflowStatus.FAILED,
            error_message=result.error or "workflow failed",
        )
