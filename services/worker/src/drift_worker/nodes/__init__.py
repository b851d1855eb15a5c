"""Node types the interpreter knows, by their `type` tag."""

from __future__ import annotations

from drift_worker.nodes.base import Interpreter, NodeFailure, NodeKind, Step, Visit
from drift_worker.nodes.branch import Branch
from drift_worker.nodes.child import Child
from drift_worker.nodes.failure import Failure
from drift_worker.nodes.http import Http
from drift_worker.nodes.instruction import Instruction, SelectionError, check_selections
from drift_worker.nodes.map import Map
from drift_worker.nodes.parallel import Parallel
from drift_worker.nodes.script import Script
from drift_worker.nodes.success import Success
from drift_worker.nodes.wait import Wait

_KINDS: tuple[NodeKind, ...] = (
    Http(),
    Script(),
    Branch(),
    Instruction(),
    Wait(),
    Child(),
    Parallel(),
    Map(),
    Success(),
    Failure(),
)
NODE_KINDS: dict[str, NodeKind] = {kind.type: kind for kind in _KINDS}

DISCONNECTABLE = frozenset({"HTTP", "SCRIPT", "BRANCH", "SUCCESS", "FAILURE"})
"""Node types a disconnected-node update may run: those that neither wait nor start other runs."""

__all__ = [
    "DISCONNECTABLE",
    "NODE_KINDS",
    "Interpreter",
    "NodeFailure",
    "NodeKind",
    "SelectionError",
    "Step",
    "Visit",
    "check_selections",
]
