"""BRANCH node: the first choice whose rule is true names the next instance."""

from __future__ import annotations

from typing import Any

import msgspec

from drift_schema.base import Shape
from drift_schema.nodes.common import NodeBase


class Choice(Shape, frozen=True):
    rule: Any
    next_node: str


class BranchNode(NodeBase, tag="BRANCH", frozen=True):
    choices: list[Choice] = msgspec.field(default_factory=list)
    default_node: str | None = None
