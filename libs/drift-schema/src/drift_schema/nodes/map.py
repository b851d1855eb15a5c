"""MAP node: runs one branch per item of a list (dynamic fan-out), at most `maxConcurrency` at once.

Each item's branch starts at `itemNode` and runs along `nextNode` as a PARALLEL branch does. Inside
it `$item` is the item, `$index` its 0-based position, and `$global.<instance>` reads that item's
own node outputs first. The node's output is the list, in item order, of each branch's last node
output; a failed item's entry is `{"error": message}`, and more failed items than
`toleratedFailures` fail the node.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from drift_schema.nodes.common import Edge, EdgeKind, NodeBase

DEFAULT_MAX_CONCURRENCY = 10


class MapNode(NodeBase, tag="MAP", kw_only=True, frozen=True):
    items: Any
    """An expression giving the list (a literal list is accepted too)."""
    item_node: str
    max_concurrency: Annotated[int, msgspec.Meta(ge=1)] = DEFAULT_MAX_CONCURRENCY
    tolerated_failures: Annotated[int, msgspec.Meta(ge=0)] = 0

    ends_run: ClassVar[bool] = False

    def edges(self) -> list[Edge]:
        """The start of its one item branch; the run goes on along the state's `nextNode` once every item ended."""
        return [Edge("/itemNode", self.item_node, EdgeKind.ITEM)]

    def branch_faults(self, max_branches: int, pointer: str = "") -> list[tuple[str, str]]:
        """Items run as branches, `maxConcurrency` at once: over the PARALLEL branch limit is a fault."""
        if self.max_concurrency <= max_branches:
            return []
        return [
            (
                f"{pointer}/maxConcurrency",
                f"a MAP node runs at most {max_branches} items at once (the PARALLEL branch limit); "
                f"this one asks for {self.max_concurrency}",
            )
        ]
