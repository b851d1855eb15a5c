"""Segments: runs of consecutive pure nodes evaluated in one local activity.

A pure node (SCRIPT, BRANCH, SUCCESS, FAILURE: any `PureNode`) needs no I/O and no wait: its
outcome is a function of its expressions and `$global`. Evaluating each in its own local activity
cost one marker, one activity round trip and one awaited JetStream acknowledgement per node, most
of a pure node's time. A segment instead starts at a pure node and follows the graph, inside one
evaluator process, until:

- the next node is not pure (HTTP, WAIT, INSTRUCTION, CHILD, PARALLEL, MAP) or does not exist;
- a node ends the run (SUCCESS, FAILURE) or fails (its expression, its time limit, its output size);
- a node's output would take `$global` past the run's context bound (the workflow fails it, as before);
- the segment has made its visit budget (the run's continue-as-new budget, and its own visit budget),
  has run for `SLICE_MS`, or carries `MAX_RESULT_BYTES` of outputs.

The process streams one frame per visit (so each node keeps its own time limit, and its event is
published while the next one evaluates); the activity answers every visit's result and the workflow
applies them in order, exactly as it would have applied one visit at a time. The decision where a
segment ends is recorded with its result (the local activity's marker), so replay never re-decides it.

A segment whose last visit ends the run (a SUCCESS or FAILURE node, or a node with no next node) also
publishes the run's final status event, after its nodes' events, when the workflow handed it one to fill
in (`SegmentTask.end`, see `run_end`): a pure run is then one local activity from RUNNING to its end.

The functions here are shared by the workflow (which states a segment may visit, which keys of
`$global` they read) and by the evaluator process (the walk itself).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from drift_schema import expressions
from drift_schema.nodes import node_type
from drift_schema.statuses import WorkflowStatus
from drift_schema.workflow import State, WorkflowDefinition
from drift_worker.model import EmitBatch, NodeResult, NodeTask, SegmentTask, SegmentVisit
from drift_worker.nodes import NODE_KINDS, Step, Visit
from drift_worker.nodes.base import PureNode

PURE_TYPES = frozenset(kind.type for kind in NODE_KINDS.values() if isinstance(kind, PureNode))
"""Node types a segment evaluates: those whose workflow half only applies their evaluation."""
SLICE_MS = 500
"""A segment starts no new node after this long: it holds one evaluator process of its tenant's share."""
MAX_RESULT_BYTES = 512 * 1024
"""A segment starts no new node once its outputs reach this size (they ride in the workflow task's completion)."""
VISIT_BYTES = 128
"""What one visit adds to a segment's result besides its output (its instance, the result's other fields)."""
_FINAL_TYPES = frozenset({"SUCCESS", "FAILURE"})
DEFAULT_NODE_LIMIT_MS = 9_000
"""A node's evaluation time limit without `timeoutMs` (the pool caps it at its own node timeout)."""

# `$global` read by one top-level key (`$global.name`, `$global.\`odd name\``); any other use of it
# (`$global` alone, `$keys($global)`, `$global[0]`, `$global.($k)`) may read any key.
_GLOBAL_USE = re.compile(r"\$global\b(?:\s*\.\s*(?:([A-Za-z_][A-Za-z0-9_]*)\b|`([^`]*)`))?")
# `$eval` evaluates a string built at run time in the caller's environment: it may read any key.
_DYNAMIC = re.compile(r"\$eval\b")


def is_pure(state: State | None) -> bool:
    """Whether a segment may evaluate this state (it exists, has a pinned node, and the node is pure)."""
    return state is not None and state.node_definition is not None and node_type(state.node_definition) in PURE_TYPES


def _successors(state: State) -> Iterator[str]:
    # A node with edges of its own (a BRANCH's choices and default) goes along them, never its nextNode.
    own = state.node_definition.edges() if state.node_definition is not None else []
    if own:
        yield from (edge.target for edge in own)
    elif not state.end and state.next_node is not None:
        yield state.next_node


def reachable_pure(definition: WorkflowDefinition, start: str) -> dict[str, State]:
    """The pure states a segment from `start` may visit: reachable from it through pure states only."""
    found: dict[str, State] = {}
    pending = [start]
    while pending:
        name = pending.pop()
        state = definition.states.get(name)
        if name in found or state is None or not is_pure(state):
            continue
        found[name] = state
        pending.extend(_successors(state))
    return found


def may_end_run(states: dict[str, State]) -> bool:
    """Whether a segment through these states may end the run: one is SUCCESS or FAILURE, or has no next node."""
    return any(
        (state.node_definition is not None and node_type(state.node_definition) in _FINAL_TYPES)
        or not any(_successors(state))
        for state in states.values()
    )


def run_end(task: SegmentTask, visits: list[SegmentVisit]) -> EmitBatch | None:
    """The run's final status event when the segment's last visit ends the run, filled in as the workflow will.

    None when the task carries no `end`, or its visits leave the run going: a next node, or an output past
    the run's context bound (the workflow fails that node). Called only when no visit failed. The event is
    the one `GenericWorkflow._finish` makes after applying these visits: the final status (COMPLETED when the
    run walked off the graph), the last node, its disposition and error, and `$global` with every output.
    """
    end = task.end
    if end is None or end.status is None or end.status.context is None or not visits:
        return None
    context = dict(end.status.context)
    sizes = dict(task.context_sizes)
    total = task.context_bytes
    step: Step | None = None
    for number, visit in enumerate(visits, start=task.first_visit):
        step = step_of(visit.instance, task.states[visit.instance], number, visit.result)
        if step.write_output:
            size = entry_bytes(visit.instance, step.output)
            total += size - sizes.get(visit.instance, 0)
            if total > task.max_context_bytes:
                return None
            context[visit.instance] = step.output
            sizes[visit.instance] = size
    assert step is not None
    if step.final_status is None and step.next_node is not None:
        return None
    status = step.final_status or WorkflowStatus.COMPLETED
    event = msgspec.structs.replace(
        end.status,
        workflow_status=status,
        current_node=visits[-1].instance,
        view=None,
        disposition=step.disposition
        if step.final_status is not None and step.disposition is not None
        else end.status.disposition,
        error_message=step.error_message if step.final_status is not None else None,
        context=context if status.is_stable else None,
    )
    return msgspec.structs.replace(end, status=event)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def global_keys(states: dict[str, State]) -> frozenset[str] | None:
    """The top-level keys of `$global` these states' expressions read; None when they may read any.

    Conservative: every `$global` must be followed by `.name`, and no expression may use `$eval`.
    Outputs the states write themselves are read from the segment's own copy, so they need not be sent.
    """
    keys: set[str] = set()
    for state in states.values():
        fields = [msgspec.to_builtins(state.node_definition), state.parameters]
        for text in _strings(fields):
            if "$" not in text or not expressions.is_expression(text):
                continue
            if _DYNAMIC.search(text):
                return None
            for use in _GLOBAL_USE.finditer(text):
                key = use.group(1) if use.group(1) is not None else use.group(2)
                if key is None:
                    return None
                keys.add(key)
    return frozenset(keys)


def entry_bytes(key: str, value: Any) -> int:
    """Bytes one `"key":value,` entry adds to the encoded context (the run's context bound counts these)."""
    return len(msgspec.json.encode(key)) + len(msgspec.json.encode(value)) + 2


def node_limit_ms(state: State) -> int:
    """A node's evaluation time limit: its `timeoutMs`, else `DEFAULT_NODE_LIMIT_MS`."""
    node = state.node_definition
    return (node.timeout_ms if node is not None else None) or DEFAULT_NODE_LIMIT_MS


def step_of(instance: str, state: State, number: int, result: NodeResult) -> Step:
    """What the run does after this visit of a pure node: its kind's own `step` (the workflow applies the same)."""
    node = state.node_definition
    assert node is not None
    kind = NODE_KINDS[node_type(node)]
    assert isinstance(kind, PureNode)
    visit = Visit(instance=instance, state=state, node=node, number=number, started_at="", parameters=state.parameters)
    return kind.step(visit, result)


def walk(
    task: SegmentTask,
    bounds: expressions.Bounds,
    max_output_bytes: int,
    send: Callable[[SegmentVisit], None],
    slice_ms: int = SLICE_MS,
    max_result_bytes: int = MAX_RESULT_BYTES,
) -> None:
    """Evaluate the segment's visits in order, sending each as it completes (in the evaluator process).

    An expression error of a node is raised (ExpressionError) after the visits before it were sent.
    """
    from drift_worker.evaluator import bindings_for, check_output_size

    context = dict(task.context)
    sizes = dict(task.context_sizes)
    total = task.context_bytes
    current: str | None = task.start
    made = 0
    carried = 0
    began = time.monotonic()
    while current is not None and made < task.max_visits:
        state = task.states.get(current)
        if state is None or state.node_definition is None:
            return
        if made and ((time.monotonic() - began) * 1000 >= slice_ms or carried >= max_result_bytes):
            return
        node = state.node_definition
        node_task = NodeTask(
            tenant=task.tenant,
            workflow_id=task.workflow_id,
            definition_id=task.definition_id,
            definition_version=task.definition_version,
            instance=current,
            node=node,
            parameters=state.parameters,
            context=context,
            enums=task.enums,
            event_id="",
            started_at="",
        )
        # A node's timeoutMs also caps each of its expressions' time (as for a node evaluated alone).
        limit = node.timeout_ms
        node_bounds = dataclasses.replace(bounds, timeout_ms=limit) if limit and limit < bounds.timeout_ms else bounds
        result = NODE_KINDS[node_type(node)].evaluate(node_task, bindings_for(node_task, node_bounds), node_bounds)
        check_output_size(current, result.output, max_output_bytes)
        send(SegmentVisit(instance=current, result=result))
        made += 1
        carried += VISIT_BYTES
        step = step_of(current, state, task.first_visit + made - 1, result)
        if step.write_output:
            size = entry_bytes(current, step.output)
            carried += size
            total += size - sizes.get(current, 0)
            if total > task.max_context_bytes:
                return  # the workflow fails this node when it writes the output, as it always did
            context[current] = step.output
            sizes[current] = size
        if step.final_status is not None:
            return
        current = step.next_node
