"""BRANCH: the first choice whose rule is true names the next instance, else `defaultNode`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drift_schema import expressions
from drift_schema.nodes import BranchNode
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import PureNode, Step, Visit, node_of, render_field


def truthy(value: Any) -> bool:
    """JSONata's boolean cast: empty strings, arrays, objects and zero are false."""
    if isinstance(value, list):
        return any(truthy(item) for item in value)
    return bool(value)


class Branch(PureNode):
    type = "BRANCH"

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        node = node_of(task.node, BranchNode)
        for index, choice in enumerate(node.choices):
            if truthy(render_field(f"choices/{index}/rule", choice.rule, bindings, bounds)):
                return NodeResult(output={"nextNode": choice.next_node}, next_node=choice.next_node)
        if node.default_node is None:
            raise expressions.ExpressionError("no choice matched and the branch has no defaultNode")
        return NodeResult(output={"nextNode": node.default_node}, next_node=node.default_node)

    def step(self, visit: Visit, result: NodeResult) -> Step:
        return Step(next_node=result.next_node, output=result.output)
