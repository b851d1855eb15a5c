"""MAP (dynamic fan-out): items, `$item`/`$index`, item-scoped `$global`, order, tolerance, nesting, validation."""

from __future__ import annotations

import re
import uuid
from typing import Any

import msgspec
import pytest

from drift_runtime.temporal import run_result
from drift_schema.graph import check_workflow
from drift_schema.nodes import child_key
from drift_schema.run import WORKFLOW_NAME, RunInput, RunLimits, RunSnapshot, temporal_id
from drift_schema.workflow import WorkflowDefinition
from drift_worker.nodes.map import SLICE_ITEMS
from worker.worker_support import TENANT, EventTap, Runner, definition, failure, script, state, success


def map_state(items: Any, item_node: str, next_node: str = "done", end: bool = False, **extra: Any) -> dict[str, Any]:
    return state({"type": "MAP", "items": items, "itemNode": item_node, **extra}, None if end else next_node, end)


def pointers(wf: WorkflowDefinition) -> set[str]:
    return {error.pointer for error in check_workflow(wf)}


async def test_each_item_runs_its_branch_and_the_output_keeps_item_order(runner: Runner, tap: EventTap) -> None:
    """Each item's branch sees `$item` and `$index`; the MAP's output is each branch's last output, in item order."""
    wf = definition(
        {
            "each": map_state("{% $global.params.numbers %}", "double", maxConcurrency=3),
            "double": script("{% $item * 2 %}", "label"),
            "label": script("{% $string($index) & ':' & $string($global.double) %}", end=True),
            "done": success("{% $join($global.each, ',') %}"),
        }
    )
    public, snapshot = await runner.finish(wf, {"numbers": [5, 1, 4, 2, 3, 9, 7]})
    assert snapshot.workflow_status == "COMPLETED", snapshot.error_message
    assert snapshot.context["each"] == ["0:10", "1:2", "2:8", "3:4", "4:6", "5:18", "6:14"]
    # Item outputs stay in their items: $global holds only the MAP's list.
    assert "double" not in snapshot.context and "label" not in snapshot.context
    # Every item visit has its node event, the item named in the instance.
    assert (await tap.node(public, "double[3]"))["output"] == 4
    assert (await tap.node(public, "label[6]"))["output"] == "6:14"
    assert (await tap.node(public, "each"))["output"] == snapshot.context["each"]


async def test_global_reads_the_items_own_outputs_first(runner: Runner) -> None:
    """Inside an item `$global.<instance>` is that item's output; outside the item the run's own one is kept."""
    wf = definition(
        {
            "seed": script("OUTER", "each"),
            "each": map_state(["a", "b"], "seed_inner"),
            "seed_inner": script("{% 'before:' & $global.seed %}", "seed_again"),
            "seed_again": script("{% $item & '/' & $global.seed_inner %}", end=True),
            "done": success("{% $global.seed %}"),
        },
        start="seed",
    )
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "COMPLETED", snapshot.error_message
    assert snapshot.context["each"] == ["a/before:OUTER", "b/before:OUTER"]
    assert snapshot.disposition == "OUTER"


async def test_failed_items_within_tolerance_are_error_entries(runner: Runner) -> None:
    """Failed items within toleratedFailures become `{"error": message}` entries and the run goes on."""
    wf = definition(
        {
            "each": map_state([1, 0, 2, 0], "check", toleratedFailures=2),
            "check": state(
                {"type": "BRANCH", "choices": [{"rule": "{% $item = 0 %}", "nextNode": "bad"}], "defaultNode": "ok"}
            ),
            "ok": script("{% 10 / $item %}", end=True),
            "bad": failure("{% 'zero at ' & $string($index) %}"),
            "done": success(),
        }
    )
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "COMPLETED", snapshot.error_message
    assert snapshot.context["each"] == [10, {"error": "zero at 1"}, 5, {"error": "zero at 3"}]


async def test_more_failures_than_tolerated_fail_the_node_to_the_failure_path(runner: Runner) -> None:
    """More failed items than toleratedFailures fail the MAP node into defaultFailureNode."""
    wf = definition(
        {
            "each": map_state([1, 0, 0, 3], "ok", toleratedFailures=1, maxConcurrency=1),
            "ok": script("{% $item = 0 ? $error('no zero') : $item %}", end=True),
            "done": success(),
            "failed": failure("{% $global.lastError.message %}"),
        },
        defaultFailureNode="failed",
    )
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == "2 items failed, more than toleratedFailures (1); item 2: output: no zero"
    assert snapshot.context["lastError"]["node"] == "each"


async def test_items_must_be_a_list(runner: Runner) -> None:
    """`items` that is not a list fails the node, naming the field."""
    wf = definition({"each": map_state("{% {'a': 1} %}", "ok"), "ok": script(1, end=True), "done": success()})
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == "items: expected a list, got an object"


async def test_parallel_inside_map_and_map_inside_parallel(runner: Runner, tap: EventTap) -> None:
    """A PARALLEL inside an item runs in that item; a MAP inside a PARALLEL branch (and inside a MAP) works."""
    wf = definition(
        {
            "fork": state({"type": "PARALLEL", "branches": ["outer_map", "side"]}, "done"),
            "side": script("SIDE", end=True),
            "outer_map": map_state([1, 2], "both", "after_map"),
            "after_map": script("{% $global.outer_map %}", end=True),
            "both": state({"type": "PARALLEL", "branches": ["plus", "inner_map"]}, "sum"),
            "plus": script("{% $item + 100 %}", end=True),
            "inner_map": map_state("{% [1..$item] %}", "times", end=True),
            "times": script("{% $item * 10 + $index %}", end=True),
            "sum": script("{% $global.plus + $sum($global.inner_map) %}", end=True),
            "done": success(),
        },
        start="fork",
    )
    public, snapshot = await runner.finish(wf)
    assert snapshot.workflow_status == "COMPLETED", snapshot.error_message
    # item 1: 101 + [10]; item 2: 102 + [10, 21]
    assert snapshot.context["outer_map"] == [111, 133]
    assert snapshot.context["after_map"] == [111, 133]
    assert snapshot.context["side"] == "SIDE"
    assert "plus" not in snapshot.context and "inner_map" not in snapshot.context
    assert (await tap.node(public, "times[1][1]"))["output"] == 21


def test_validation_checks_item_node_targets_and_branch_ends() -> None:
    """A missing itemNode target, an item branch that leaves other than by ending, and a too wide maxConcurrency
    are each refused with a pointer."""
    missing = definition({"each": map_state([1], "nowhere"), "done": success()})
    assert pointers(missing) == {"/states/each/nodeDefinition/itemNode"}
    escaping = definition(
        {"each": map_state([1], "work"), "work": script(1, "done"), "done": success()},
    )
    assert pointers(escaping) == {"/states/each/nodeDefinition/itemNode"}
    wide = definition({"each": map_state([1], "w", maxConcurrency=1000), "w": script(1, end=True), "done": success()})
    assert pointers(wide) == {"/states/each/nodeDefinition/maxConcurrency"}
    fine = definition({"each": map_state([1], "w"), "w": script(1, end=True), "done": success()})
    assert pointers(fine) == set()
    assert msgspec.to_builtins(fine.states["each"].node_definition)["itemNode"] == "w"


async def test_a_map_larger_than_a_slice_runs_in_child_slices_with_bounded_histories(
    runner: Runner, tap: EventTap
) -> None:
    """A MAP over more items than one slice holds completes in item order, item indexes global across slices,
    tolerance counted across slices, and no history (the run's or a slice's) holds more than a slice's visits."""
    count = SLICE_ITEMS * 2 + 7
    wf = definition(
        {
            "each": map_state("{% [0..$global.params.n - 1] %}", "square", maxConcurrency=20, toleratedFailures=1),
            "square": script("{% $item = 3 ? $error('three') : $item * $item + $index %}", end=True),
            "done": success("{% $count($global.each) %}"),
        }
    )
    public, handle = await runner.start(wf, {"n": count})
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "COMPLETED", snapshot.error_message
    outputs = snapshot.context["each"]
    assert len(outputs) == count
    assert outputs[3] == {"error": "output: three"}
    assert [o for i, o in enumerate(outputs) if i != 3] == [i * i + i for i in range(count) if i != 3]
    assert (await tap.node(public, f"square[{count - 1}]"))["output"] == (count - 1) ** 2 + count - 1
    parent_events = len((await handle.fetch_history()).events)
    assert parent_events < 100
    # Only the run's own status events: slices announce none.
    assert tap.statuses(public) == ["RUNNING", "COMPLETED"]


async def test_failures_past_tolerance_across_slices_fail_the_map(runner: Runner) -> None:
    """Failed items are counted over every slice: one more than toleratedFailures fails the MAP."""
    count = SLICE_ITEMS + 10
    failing = [2, SLICE_ITEMS + 3]
    wf = definition(
        {
            "each": map_state(list(range(count)), "check", toleratedFailures=1),
            "check": script(f"{{% $item in {failing} ? $error('bad') : $item %}}", end=True),
            "done": success(),
        }
    )
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == (
        f"2 items failed, more than toleratedFailures (1); item {SLICE_ITEMS + 3}: output: bad"
    )


# A failing slice cancels its siblings' local activities; one that finished in the same instant
# makes the SDK warn that it has nothing to cancel (a benign race, seen under CI's load).
@pytest.mark.filterwarnings("ignore:Cannot find activity to cancel for token:UserWarning")
async def test_slices_spend_the_runs_visit_budget(runner: Runner) -> None:
    """Item visits in slice runs count towards the run's visit budget: a slice gets only what is left."""
    wf = definition(
        {
            "each": map_state(list(range(SLICE_ITEMS + 100)), "step", maxConcurrency=20),
            "step": script("{% $item %}", end=True),
            "done": success(),
        }
    )
    public = f"budget-{uuid.uuid4().hex[:8]}"
    run = RunInput(
        tenant=TENANT,
        workflow_id=public,
        definition=wf,
        context={"params": None},
        command_id=f"cmd-{public}",
        limits=RunLimits(max_visits=SLICE_ITEMS + 50),
    )
    handle = await runner.client.start_workflow(
        WORKFLOW_NAME, run, id=temporal_id(TENANT, public), task_queue=runner.task_queue, result_type=RunSnapshot
    )
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    # How many items meet the exhausted budget depends on which slice visits first: at least one fails.
    assert re.search(r"\b[1-9]\d* items failed, more than toleratedFailures \(0\)", snapshot.error_message)
    assert f"its budget of {SLICE_ITEMS + 50 - SLICE_ITEMS - 1}" in snapshot.error_message


async def test_child_runs_inside_slices_spend_the_runs_descendant_budget(runner: Runner) -> None:
    """A CHILD node inside a MAP larger than one slice starts its child from the run's descendant budget."""
    leaf = definition({"done": success("LEAF")}, id="leaf")
    call = {"type": "CHILD", "childWorkflowId": "leaf", "executionMode": "SYNC"}
    wf = definition(
        {
            "each": map_state(list(range(SLICE_ITEMS + 2)), "pick", maxConcurrency=50),
            "pick": state(
                {
                    "type": "BRANCH",
                    "choices": [{"rule": f"{{% $item >= {SLICE_ITEMS} %}}", "nextNode": "call"}],
                    "defaultNode": "plain",
                }
            ),
            "plain": script("{% $item %}", end=True),
            "call": state(call, end=True),
            "done": success(),
        }
    )
    snapshot = await runner.run(wf, children={child_key("leaf", "ACTIVE"): leaf})
    assert snapshot.workflow_status == "COMPLETED", snapshot.error_message
    tail = snapshot.context["each"][SLICE_ITEMS:]
    assert [entry["disposition"] for entry in tail] == ["LEAF", "LEAF"]
