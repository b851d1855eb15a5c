"""INSTRUCTION: renders a view of widgets, waits for a person, keeps their selections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from drift_schema import expressions
from drift_schema.nodes import InstructionNode
from drift_worker import patches
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import Interpreter, Step, Visit, WorkflowNode, node_of, render_field


class SelectionError(ValueError):
    """A resume whose selections do not match the waiting view."""


def _options(view: Any) -> list[dict[str, Any]]:
    options = view.get("inputOptions") if isinstance(view, dict) else None
    return [option for option in options or [] if isinstance(option, dict)]


def _key(value: Any) -> str:
    """A value as the JSON object key it would be: `true` is "true" (not Python's "True") and never equals 1."""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _same(value: Any, possible: Any) -> bool:
    """JSON equality: `true` is not `1` (Python's bool is an int), `1` is `1.0`, "1" is not `1`."""
    return isinstance(value, bool) == isinstance(possible, bool) and bool(value == possible)


def check_selections(view: Any, selected: Mapping[str, Any]) -> None:
    """Refuse selections naming no option of the view, or a value outside an option's possibleValues.

    A dependent option (under `possibleDependentValues`) becomes selectable when
    its parent's selected value is the key it hangs under.
    """
    reachable: dict[str, dict[str, Any]] = {}
    pending = _options(view)
    while pending:
        option = pending.pop()
        reachable[str(option.get("id"))] = option
        dependents: Any = option.get("possibleDependentValues") or {}
        chosen = selected.get(str(option.get("id")))
        if isinstance(dependents, dict) and chosen is not None and _key(chosen) in dependents:
            dependent = dependents[_key(chosen)]
            if isinstance(dependent, dict):
                pending.append(dependent)
    faults = []
    for option_id, value in selected.items():
        found = reachable.get(option_id)
        if found is None:
            faults.append(f"'{option_id}' is not an option of this view")
            continue
        allowed = found.get("possibleValues")
        if allowed:
            values = [entry.get("value") for entry in allowed if isinstance(entry, dict)]
            if not any(_same(value, possible) for possible in values):
                faults.append(f"'{value}' is not a possible value of option '{option_id}'")
    if faults:
        raise SelectionError("; ".join(faults))


class Instruction(WorkflowNode):
    type = "INSTRUCTION"

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        node = node_of(task.node, InstructionNode)
        view = render_field("view", msgspec.to_builtins(node.view), bindings, bounds)
        if not isinstance(view.get("inputOptions", []), list):
            raise expressions.ExpressionError("view.inputOptions must evaluate to a list of options")
        return NodeResult(view=view, disposition=render_field("disposition", node.disposition, bindings, bounds))

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        result = await run.evaluate(visit)
        # timeoutMs bounds the wait for a person (a human step with a deadline); patched in, so histories of
        # INSTRUCTION nodes recorded while it was ignored replay as they ran.
        node = visit.node
        timeout = node.timeout_ms if node.timeout_ms is not None and run.patched(patches.INSTRUCTION_TIMEOUT) else None
        selections = await run.wait_for_input(visit, result, timeout)
        output = {"selectedOptions": selections}
        await run.completed(visit, output)
        return Step(next_node=visit.next_node, output=output, disposition=result.disposition)
