"""SUCCESS node: completes the run with a disposition."""

from __future__ import annotations

from typing import Any

from drift_schema.nodes.common import NodeBase


class SuccessNode(NodeBase, tag="SUCCESS", frozen=True):
    disposition: Any = None
    output: Any = None
