"""SUCCESS node: completes the run with a disposition."""

from __future__ import annotations

from typing import Any, ClassVar

from drift_schema.nodes.common import Edge, NodeBase


class SuccessNode(NodeBase, tag="SUCCESS", frozen=True):
    disposition: Any = None
    output: Any = None

    ends_run: ClassVar[bool] = True
    steers: ClassVar[bool] = True

    def edges(self) -> list[Edge]:
        """None: reaching it completes the run."""
        return []
