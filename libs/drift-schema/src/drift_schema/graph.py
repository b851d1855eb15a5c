"""Graph checks of workflow definitions: every fault at once, each with a JSON pointer."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec

from drift_schema.api import ProblemError
from drift_schema.expressions import syntax_errors
from drift_schema.nodes import Edge, EdgeKind, NodeBase
from drift_schema.nodes.timing import timing_faults
from drift_schema.pointer import escape
from drift_schema.run import DEFAULT_MAX_BRANCHES
from drift_schema.workflow import State, WorkflowDefinition

NodeResolver = Callable[[State], NodeBase | None]


def node_errors(node: NodeBase, pointer: str = "") -> list[ProblemError]:
    """Expression syntax errors and static bounds faults inside one node definition."""
    return [
        ProblemError(pointer=where, message=message)
        for where, message in syntax_errors(msgspec.to_builtins(node), pointer)
    ] + bounds_errors(node, pointer)


def bounds_errors(node: NodeBase, pointer: str = "") -> list[ProblemError]:
    """Bounds a node breaks before it ever runs (a run would fail the node at the same bound)."""
    faults = timing_faults(node, pointer) + node.branch_faults(DEFAULT_MAX_BRANCHES, pointer)
    return [ProblemError(pointer=where, message=message) for where, message in faults]


def edges(state: State, node: NodeBase | None) -> list[Edge]:
    """Every edge leaving a state: its `nextNode`, then the edges its node says it has (none if unknown)."""
    own = [Edge("/nextNode", state.next_node, EdgeKind.NEXT)] if state.next_node is not None else []
    return own + (node.edges() if node is not None else [])


def _branch_edges(node: NodeBase | None) -> list[Edge]:
    """The edges that start a branch of their own (PARALLEL's branches, MAP's item branch)."""
    return [edge for edge in node.edges() if edge.kind.starts_branch] if node is not None else []


def _node_of(state: State, resolve: NodeResolver | None) -> NodeBase | None:
    if state.node_definition is not None:
        return state.node_definition
    return resolve(state) if resolve is not None else None


def check_workflow(
    definition: WorkflowDefinition,
    resolve: NodeResolver | None = None,
    unresolved: Mapping[str, ProblemError] | None = None,
) -> list[ProblemError]:
    """Every structural fault of a workflow graph.

    `resolve` finds a referenced node definition; when given, a state whose
    node cannot be resolved is a fault. Without it, only inline nodes are checked.
    `unresolved` (by instance name) is the fault to report for such a state when the
    caller knows more than "does not exist" (say, which version is missing).
    """
    errors: list[ProblemError] = []
    states = definition.states
    if not states:
        errors.append(ProblemError(pointer="/states", message="a workflow needs at least one state"))
    if definition.start_node is None:
        errors.append(ProblemError(pointer="/startNode", message="startNode is required"))
    elif definition.start_node not in states:
        errors.append(ProblemError(pointer="/startNode", message=f"'{definition.start_node}' is not a state"))
    if definition.default_failure_node is not None and definition.default_failure_node not in states:
        errors.append(
            ProblemError(pointer="/defaultFailureNode", message=f"'{definition.default_failure_node}' is not a state")
        )
    for index, name in enumerate(definition.post_workflow_completion_nodes):
        if name not in states:
            errors.append(
                ProblemError(pointer=f"/postWorkflowCompletionNodes/{index}", message=f"'{name}' is not a state")
            )

    has_terminal = False
    for name, state in states.items():
        base = f"/states/{escape(name)}"
        if state.resource_id is None and state.node_definition is None:
            errors.append(ProblemError(pointer=base, message="a state needs a resourceId or a nodeDefinition"))
        node = _node_of(state, resolve)
        if node is None and state.resource_id is not None and resolve is not None:
            errors.append(
                (unresolved or {}).get(name)
                or ProblemError(
                    pointer=f"{base}/resourceId",
                    message=f"node '{state.resource_id}' version '{state.resource_version}' does not exist",
                )
            )
        inline = state.node_definition is not None
        node_pointer = f"{base}/nodeDefinition" if inline else f"{base}/resourceId"
        if inline and node is not None:
            errors += node_errors(node, node_pointer)
        errors += [
            ProblemError(pointer=where, message=message)
            for where, message in syntax_errors(state.parameters, f"{base}/parameters")
        ]
        for edge in edges(state, node):
            if edge.target not in states:
                if edge.kind is EdgeKind.NEXT:
                    where = f"{base}{edge.pointer}"
                else:
                    where = f"{node_pointer}{edge.pointer}" if inline else node_pointer
                errors.append(ProblemError(pointer=where, message=f"'{edge.target}' is not a state"))
        if state.end or (node is not None and node.ends_run) or _maybe_terminal(state, node, resolve):
            has_terminal = True
    if states and not has_terminal:
        errors.append(ProblemError(pointer="/states", message="no terminal state (end: true, SUCCESS or FAILURE)"))
    errors += parallel_escapes(definition, resolve)
    return errors


def _maybe_terminal(state: State, node: NodeBase | None, resolve: NodeResolver | None) -> bool:
    # Without a resolver a referenced node's type is unknown: a state that leads nowhere may be a SUCCESS.
    return resolve is None and node is None and state.resource_id is not None and state.next_node is None


def _state_pointer(name: str, state: State, relative: str) -> str:
    base = f"/states/{escape(name)}"
    return f"{base}/nodeDefinition{relative}" if state.node_definition is not None else f"{base}/resourceId"


def branch_states(definition: WorkflowDefinition, start: str, resolve: NodeResolver | None = None) -> list[str]:
    """The states a PARALLEL branch from `start` may visit, in visiting order.

    A branch walks every edge of its states (next, choices, default, inner
    branches) and stops at an instance with `end: true`: its edges lead out
    of the branch legitimately, so they are not followed.
    """
    return list(_walk(definition, [start], {}, resolve, past_end=False))


def _roots(definition: WorkflowDefinition) -> list[str]:
    """Where a run may begin walking: startNode, the failure node and the completion nodes."""
    roots = [definition.start_node, definition.default_failure_node, *definition.post_workflow_completion_nodes]
    return [root for root in roots if root is not None]


def _walk(
    definition: WorkflowDefinition,
    stack: list[str],
    seen: dict[str, None],
    resolve: NodeResolver | None,
    past_end: bool = True,
) -> dict[str, None]:
    """`seen` plus every state reachable from `stack` (depth first, each state's edges in order), in visiting order.

    States already in `seen` are not walked through; with `past_end` False, neither is an `end: true` state.
    """
    while stack:
        name = stack.pop()
        if name in seen or name not in definition.states:
            continue
        seen[name] = None
        state = definition.states[name]
        if state.end and not past_end:
            continue
        stack += [edge.target for edge in reversed(edges(state, _node_of(state, resolve)))]
    return seen


def _outside_reach(definition: WorkflowDefinition, parallel: str, resolve: NodeResolver | None) -> set[str]:
    """States the run reaches without entering the branches of `parallel` (including `parallel` itself)."""
    state = definition.states[parallel]
    onward = [edge.target for edge in edges(state, _node_of(state, resolve)) if not edge.kind.starts_branch]
    return set(_walk(definition, _roots(definition) + onward, {parallel: None}, resolve))


def parallel_escapes(definition: WorkflowDefinition, resolve: NodeResolver | None = None) -> list[ProblemError]:
    """Every PARALLEL branch that reaches a state outside itself other than by ending.

    A branch owns the states it reaches from its start (see `branch_states`).
    It escapes when it reaches the PARALLEL state itself, a state the run
    reaches without entering the branches (such as the continuation at the
    PARALLEL's `nextNode`), or a state of a sibling branch that does not
    itself reach into this one: such a state would run twice, or concurrently
    with itself.
    """
    errors: list[ProblemError] = []
    for name, state in definition.states.items():
        node = _node_of(state, resolve)
        branches = _branch_edges(node)
        if not branches:
            continue
        starts = [edge.target for edge in branches if edge.target in definition.states]
        regions = {start: branch_states(definition, start, resolve) for start in starts}
        outside = _outside_reach(definition, name, resolve)
        for edge in branches:
            start = edge.target
            if start not in regions:
                continue  # a missing target is reported with the other edges
            # A sibling that reaches into this branch is the one escaping; this branch is not at fault for it.
            siblings = {
                other for key, region in regions.items() if key != start and start not in region for other in region
            }
            for reached in regions[start]:
                if reached in outside or reached in siblings:
                    errors.append(
                        ProblemError(
                            pointer=_state_pointer(name, state, edge.pointer),
                            message=f"branch '{start}' reaches '{reached}', a state outside the branch "
                            "(a branch leaves only through an instance with end: true)",
                        )
                    )
                    break
    return errors


def reachable(definition: WorkflowDefinition, resolve: NodeResolver | None = None) -> set[str]:
    """Names of the states reachable from startNode, the failure node and completion nodes."""
    return set(_walk(definition, _roots(definition), {}, resolve))


def disconnected(definition: WorkflowDefinition, resolve: NodeResolver | None = None) -> list[str]:
    """States no edge reaches: runnable only through the disconnected-node route."""
    reached = reachable(definition, resolve)
    return [name for name in definition.states if name not in reached]
