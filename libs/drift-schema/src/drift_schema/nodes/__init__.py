"""Node definitions: one module per node type, joined into one tagged union.

Adding a node type: its module here (fields, `ends_run`, `edges()`), a member of `NodeDefinition`,
and its interpreter in the worker's registry (`drift_worker.nodes`); tests/schema checks both agree.
"""

from __future__ import annotations

from typing import get_args

from drift_schema.nodes.branch import BranchNode
from drift_schema.nodes.child import ChildNode, ExecutionMode, child_key, resolve_children
from drift_schema.nodes.common import Edge, EdgeKind, NodeBase, NodeId, RetryPolicy
from drift_schema.nodes.failure import FailureNode
from drift_schema.nodes.http import HttpNode, HttpRequest
from drift_schema.nodes.instruction import Instruction, InstructionNode, View
from drift_schema.nodes.map import MapNode
from drift_schema.nodes.parallel import ParallelNode
from drift_schema.nodes.script import ScriptNode
from drift_schema.nodes.success import SuccessNode
from drift_schema.nodes.wait import AbsoluteWait, OnEventWait, SchedulerWait, WaitNode

NodeDefinition = (
    HttpNode
    | ScriptNode
    | BranchNode
    | InstructionNode
    | WaitNode
    | ChildNode
    | ParallelNode
    | MapNode
    | SuccessNode
    | FailureNode
)

NODE_TYPES: dict[str, type[NodeBase]] = {str(cls.__struct_config__.tag): cls for cls in get_args(NodeDefinition)}
"""The node types by `type` tag: the one list (the `NodeDefinition` union) the worker's registry must match."""


def node_type(node: NodeBase) -> str:
    """The wire `type` tag of a node definition."""
    return str(type(node).__struct_config__.tag)


__all__ = [
    "NODE_TYPES",
    "AbsoluteWait",
    "BranchNode",
    "ChildNode",
    "Edge",
    "EdgeKind",
    "ExecutionMode",
    "FailureNode",
    "HttpNode",
    "HttpRequest",
    "Instruction",
    "InstructionNode",
    "MapNode",
    "NodeBase",
    "NodeDefinition",
    "NodeId",
    "OnEventWait",
    "ParallelNode",
    "RetryPolicy",
    "SchedulerWait",
    "ScriptNode",
    "SuccessNode",
    "View",
    "WaitNode",
    "child_key",
    "node_type",
    "resolve_children",
]
