"""SCRIPT node: evaluates one expression as its output."""

from __future__ import annotations

from typing import Any, ClassVar

from drift_schema.nodes.common import Edge, NodeBase


class ScriptNode(NodeBase, tag="SCRIPT", frozen=True):
    output: Any = None

    ends_run: ClassVar[bool] = False

    def edges(self) -> list[Edge]:
        """None of its own: the run goes on along its state's `nextNode`."""
        return []
