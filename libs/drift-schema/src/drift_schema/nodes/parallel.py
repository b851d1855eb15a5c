"""PARALLEL node: runs branches of instances concurrently."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from drift_schema.nodes.common import Edge, EdgeKind, NodeBase


class ParallelNode(NodeBase, tag="PARALLEL", frozen=True):
    branches: list[str] = msgspec.field(default_factory=list)

    ends_run: ClassVar[bool] = False
    steers: ClassVar[bool] = True

    def edges(self) -> list[Edge]:
        """The start of each branch; the run goes on along the state's `nextNode` once all have ended."""
        return [Edge(f"/branches/{index}", start, EdgeKind.BRANCH, index) for index, start in enumerate(self.branches)]

    def branch_faults(self, max_branches: int, pointer: str = "") -> list[tuple[str, str]]:
        """Every branch runs at once: more than `max_branches` of them is a fault."""
        if len(self.branches) <= max_branches:
            return []
        return [
            (
                f"{pointer}/branches",
                f"a PARALLEL node runs at most {max_branches} branches; this one has {len(self.branches)}",
            )
        ]
