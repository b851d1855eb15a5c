"""SCRIPT: the output expression becomes `$global.<instance>`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drift_schema import expressions
from drift_schema.nodes import ScriptNode
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import PureNode, render_field


class Script(PureNode):
    type = "SCRIPT"

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        assert isinstance(task.node, ScriptNode)
        return NodeResult(output=render_field("output", task.node.output, bindings, bounds))
