"""BRANCH node: the first choice whose rule is true names the next instance."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from drift_schema.base import Shape
from drift_schema.nodes.common import Edge, EdgeKind, NodeBase


class Choice(Shape, frozen=True):
    rule: Any
    next_node: str


class BranchNode(NodeBase, tag="BRANCH", frozen=True):
    choices: list[Choice] = msgspec.field(default_factory=list)
    default_node: str | None = None

    ends_run: ClassVar[bool] = False
    steers: ClassVar[bool] = True

    def edges(self) -> list[Edge]:
        """Each choice's `nextNode` (with its rule), then `defaultNode`."""
        found = [
            Edge(f"/choices/{index}/nextNode", choice.next_node, EdgeKind.CHOICE, index, choice.rule)
            for index, choice in enumerate(self.choices)
        ]
        if self.default_node is not None:
            found.append(Edge("/defaultNode", self.default_node, EdgeKind.DEFAULT))
        return found
