"""FAILURE node: fails the run with an error message."""

from __future__ import annotations

from typing import Any, ClassVar

from drift_schema.nodes.common import Edge, NodeBase


class FailureNode(NodeBase, tag="FAILURE", frozen=True):
    error: Any = None

    ends_run: ClassVar[bool] = True
    steers: ClassVar[bool] = True

    def edges(self) -> list[Edge]:
        """None: reaching it fails the run."""
        return []
