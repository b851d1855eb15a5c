"""Node types the interpreter knows, by their `type` tag."""

from __future__ import annotations

from drift_worker.nodes.base import NodeKind, Step
from drift_worker.nodes.branch import Branch
from drift_worker.nodes.failure import Failure
from drift_worker.nodes.instruction import Instruction, SelectionError, check_selections
from drift_worker.nodes.script import Script
from drift_worker.nodes.success import Success

_KINDS: tuple[NodeKind, ...] = (Script(), Branch(), Instruction(), Success(), Failure())
NODE_KINDS: dict[str, NodeKind] = {kind.type: kind for kind in _KINDS}

__all__ = ["NODE_KINDS", "NodeKind", "SelectionError", "Step", "check_selections"]
