"""CHILD node: starts another workflow definition as a child run."""

from __future__ import annotations

import enum
from typing import Any

from drift_schema.nodes.common import NodeBase


class ExecutionMode(enum.StrEnum):
    ASYNC = "ASYNC"
    SYNC = "SYNC"


class ChildNode(NodeBase, tag="CHILD", kw_only=True, frozen=True):
    child_workflow_id: str
    child_workflow_version: str = "ACTIVE"
    execution_mode: ExecutionMode = ExecutionMode.SYNC
    params: Any = None
