"""Which node types honour `retry` and `timeoutMs`, and the pointers of those that refuse them.

- HTTP: `timeoutMs` bounds each attempt; `retry` is the call's Temporal retry policy.
- SCRIPT, BRANCH, SUCCESS, FAILURE: `timeoutMs` bounds the evaluation; `retry` accepted.
- WAIT: `timeoutMs` shorter than the wait (or the event's wait) fails the node; `retry` refused
  (waiting again after a timeout is only a longer wait).
- INSTRUCTION: `timeoutMs` fails the node when nobody answers; `retry` refused (ask again with a loop).
- CHILD SYNC: `timeoutMs` cancels the child and fails the node; `retry` refused (a BRANCH back retries).
- CHILD ASYNC: both refused (the parent does not wait for its child).
- PARALLEL, MAP: both refused (bound the nodes of the branches instead).
"""

from __future__ import annotations

from drift_schema.nodes.child import ChildNode, ExecutionMode
from drift_schema.nodes.common import NodeBase

NO_RETRY = frozenset({"WAIT", "INSTRUCTION", "CHILD", "PARALLEL", "MAP"})
NO_TIMEOUT = frozenset({"PARALLEL", "MAP"})


def timing_faults(node: NodeBase, pointer: str = "") -> list[tuple[str, str]]:
    """(pointer, message) of each `retry` or `timeoutMs` this node's type refuses."""
    kind = str(type(node).__struct_config__.tag)
    faults: list[tuple[str, str]] = []
    if node.retry is not None and kind in NO_RETRY:
        faults.append(
            (f"{pointer}/retry", f"a {kind} node is not retried: route its failure (defaultFailureNode) instead")
        )
    if node.timeout_ms is not None:
        if kind in NO_TIMEOUT:
            faults.append((f"{pointer}/timeoutMs", f"a {kind} node has no timeoutMs: bound the nodes of its branches"))
        elif isinstance(node, ChildNode) and node.execution_mode == ExecutionMode.ASYNC:
            faults.append(
                (f"{pointer}/timeoutMs", "an ASYNC CHILD node does not wait for its child: timeoutMs needs SYNC")
            )
    return faults
