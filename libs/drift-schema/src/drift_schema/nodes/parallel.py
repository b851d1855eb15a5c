"""PARALLEL node: runs branches of instances concurrently."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from drift_schema.nodes.common import Edge, EdgeKind, NodeBase


class ParallelNode(NodeBase, tag="PARALLEL", frozen=True):
    branches: list[str] = msgspec.field(default_factory=list)

    ends_run: ClassVar[bool] = False

    def edges(self) -> list[Edge]:
        """The start of each branch; the run goes on along the state's `nextNode` once all have ended."""
        return [Edge(f"/branches/{index}", start, EdgeKind.BRANCH, index) for index, start in enumerate(self.branches)]
