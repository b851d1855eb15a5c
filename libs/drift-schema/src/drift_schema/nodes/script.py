"""SCRIPT node: evaluates one expression as its output."""

from __future__ import annotations

from typing import Any

from drift_schema.nodes.common import NodeBase


class ScriptNode(NodeBase, tag="SCRIPT", frozen=True):
    output: Any = None
