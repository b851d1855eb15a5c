"""FAILURE node: fails the run with an error message."""

from __future__ import annotations

from typing import Any

from drift_schema.nodes.common import NodeBase


class FailureNode(NodeBase, tag="FAILURE", frozen=True):
    error: Any = None
