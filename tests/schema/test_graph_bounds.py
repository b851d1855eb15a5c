"""Static bounds of a definition, checked at publish: a PARALLEL past its branch bound is refused with a pointer."""

from __future__ import annotations

import msgspec

from drift_schema.graph import check_workflow, node_errors
from drift_schema.nodes import NodeDefinition
from drift_schema.run import DEFAULT_MAX_BRANCHES
from drift_schema.workflow import WorkflowDefinition


def _parallel(branches: int) -> dict[str, object]:
    return {"id": "fan", "type": "PARALLEL", "branches": [f"b{i}" for i in range(branches)]}


def test_a_parallel_node_past_the_branch_bound_is_refused_at_its_branches() -> None:
    """A PARALLEL node definition with more branches than a run may start answers a fault at `/branches`."""
    node: NodeDefinition = msgspec.convert(_parallel(DEFAULT_MAX_BRANCHES + 1), NodeDefinition)  # type: ignore[arg-type]
    faults = node_errors(node)
    assert [fault.pointer for fault in faults] == ["/branches"]
    assert f"at most {DEFAULT_MAX_BRANCHES} branches; this one has {DEFAULT_MAX_BRANCHES + 1}" in faults[0].message
    at_bound: NodeDefinition = msgspec.convert(_parallel(DEFAULT_MAX_BRANCHES), NodeDefinition)  # type: ignore[arg-type]
    assert node_errors(at_bound) == []


def test_an_inline_parallel_past_the_bound_is_refused_in_a_workflow() -> None:
    """In a workflow the fault points at the state's inline node definition."""
    branches = 3000
    states: dict[str, object] = {
        "fan": {"nodeDefinition": _parallel(branches), "nextNode": "done"},
        **{
            f"b{i}": {"nodeDefinition": {"id": "s", "type": "SCRIPT", "output": 1}, "end": True}
            for i in range(branches)
        },
        "done": {"nodeDefinition": {"id": "d", "type": "SUCCESS", "disposition": "OK"}, "end": True},
    }
    definition = msgspec.convert({"id": "wide", "startNode": "fan", "states": states}, WorkflowDefinition)
    pointers = [fault.pointer for fault in check_workflow(definition)]
    assert "/states/fan/nodeDefinition/branches" in pointers
