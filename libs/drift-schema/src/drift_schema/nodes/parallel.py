"""PARALLEL node: runs branches of instances concurrently."""

from __future__ import annotations

import msgspec

from drift_schema.nodes.common import NodeBase


class ParallelNode(NodeBase, tag="PARALLEL", frozen=True):
    branches: list[str] = msgspec.field(default_factory=list)
