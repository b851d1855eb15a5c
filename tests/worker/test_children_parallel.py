"""CHILD runs (SYNC and ASYNC, pinned definitions) and PARALLEL branches."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowExecutionStatus

from drift_runtime.temporal import run_result
from drift_schema.nodes import child_key, resolve_children
from drift_schema.run import EVENT_UPDATE, EventInput, RunSnapshot, temporal_id
from drift_schema.workflow import WorkflowDefinition
from worker.worker_support import TENANT, EventTap, Runner, definition, failure, script, state, success


def child(workflow_id: str, mode: str, params: Any = None, version: str = "ACTIVE") -> dict[str, Any]:
    node = {"type": "CHILD", "childWorkflowId": workflow_id, "childWorkflowVersion": version, "executionMode": mode}
    return state({**node, "params": params}, "done")


DOUBLER = definition(
    {
        "double": script("{% $global.params.n * 2 %}", "done"),
        "done": success("{% 'DOUBLED ' & $string($global.double) %}"),
    },
    id="doubler",
)
BROKEN = definition({"stop": failure("{% 'child refused ' & $string($global.params.n) %}")}, id="broken")
WAITER = definition(
    {
        "hold": state({"type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "go"}}, "done"),
        "done": success("WENT"),
    },
    id="waiter",
)


def pinned(*definitions: WorkflowDefinition) -> dict[str, WorkflowDefinition]:
    return {child_key(d.id, "ACTIVE"): d for d in definitions}


async def test_sync_child_feeds_its_parent(runner: Runner, tap: EventTap) -> None:
    """A SYNC child runs to completion; its status, disposition and context land in the parent's context."""
    wf = definition(
        {
            "calc": child("doubler", "SYNC", "{% {'n': $global.params.n} %}"),
            "done": success("{% 'parent got ' & $string($global.calc.context.double) %}"),
        }
    )
    public, snapshot = await runner.finish(wf, {"n": 21}, children=pinned(DOUBLER))
    assert snapshot.disposition == "parent got 42"
    output = snapshot.context["calc"]
    assert output["workflowStatus"] == "COMPLETED"
    assert output["disposition"] == "DOUBLED 42"
    assert output["context"]["params"] == {"n": 21}
    child_id = output["workflowId"]
    assert child_id.startswith(f"{public}-calc-")
    # The child is a run of its own: its own events, under its own public id and the same tenant.
    assert (await tap.status(child_id, "COMPLETED"))["disposition"] == "DOUBLED 42"
    child_run = runner.client.get_workflow_handle(temporal_id(TENANT, child_id), result_type=RunSnapshot)
    assert (await run_result(child_run)).workflow_id == child_id


async def test_failed_sync_child_fails_the_node_with_its_message(runner: Runner) -> None:
    """A SYNC child that fails fails the CHILD node with the child's error message."""
    wf = definition({"calc": child("broken", "SYNC", {"n": 7}), "done": success()})
    snapshot = await runner.run(wf, children=pinned(BROKEN))
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    assert snapshot.error_message.endswith("FAILED: child refused 7")


async def test_terminated_sync_child_fails_the_node(runner: Runner, tap: EventTap) -> None:
    """A SYNC child that is terminated fails the CHILD node."""
    wf = definition({"calc": child("waiter", "SYNC"), "done": success()})
    public, handle = await runner.start(wf, children=pinned(WAITER))
    started = await tap.wait_for(lambda: [w for w in tap.workflow if w.startswith(f"{public}-calc-")])
    child_id = started[0]
    await tap.status(child_id, "WAITING")
    await runner.client.get_workflow_handle(temporal_id(TENANT, child_id)).terminate(reason="operator says no")
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    assert snapshot.error_message == f"child workflow '{child_id}' was terminated"


async def test_async_child_outlives_its_parent(runner: Runner, tap: EventTap) -> None:
    """An ASYNC child starts, the parent goes on and completes, and the child keeps running (ABANDON)."""
    wf = definition({"spawn": child("waiter", "ASYNC"), "done": success("PARENT DONE")})
    snapshot = await runner.run(wf, children=pinned(WAITER))
    assert snapshot.workflow_status == "COMPLETED"
    child_id = snapshot.context["spawn"]["workflowId"]
    assert snapshot.context["spawn"] == {"workflowId": child_id}
    await tap.status(child_id, "WAITING")
    child_run = runner.client.get_workflow_handle(temporal_id(TENANT, child_id), result_type=RunSnapshot)
    assert (await child_run.describe()).status == WorkflowExecutionStatus.RUNNING
    await child_run.execute_update(EVENT_UPDATE, EventInput(event="go", payload=None, command_id="go-1"))
    assert (await run_result(child_run)).disposition == "WENT"


async def test_unpinned_child_fails_the_node(runner: Runner) -> None:
    """A CHILD whose definition was not pinned at start fails, saying so."""
    wf = definition({"calc": child("nowhere", "SYNC"), "done": success()})
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "FAILED"
    assert "was not pinned" in (snapshot.error_message or "")


async def test_grandchildren_resolve_from_the_pinned_map() -> None:
    """`resolve_children` pins the whole closure once each, follows versions, and stops at cycles."""
    middle = definition({"inner": child("doubler", "SYNC", version="3"), "done": success()}, id="middle")
    looping = definition({"again": child("looping", "SYNC"), "done": success()}, id="looping")
    root = definition({"a": child("middle", "SYNC"), "b": child("looping", "ASYNC"), "done": success()}, start="a")
    store = {("middle", "ACTIVE"): middle, ("doubler", "3"): DOUBLER, ("looping", "ACTIVE"): looping}
    fetched: list[tuple[str, str]] = []

    async def fetch(workflow_id: str, version: str) -> WorkflowDefinition | None:
        fetched.append((workflow_id, version))
        return store.get((workflow_id, version))

    children = await resolve_children(root, fetch)
    assert set(children) == {"middle@ACTIVE", "doubler@3", "looping@ACTIVE"}
    assert sorted(fetched) == sorted(store)


async def test_parallel_branches_overlap_and_all_outputs_land(runner: Runner, tap: EventTap) -> None:
    """Branches run concurrently (both wait on timers at once); every branch's outputs land in `$global`."""

    def pause(next_node: str) -> dict[str, Any]:
        return state({"type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 1}}, next_node)

    wf = definition(
        {
            "fan": state({"type": "PARALLEL", "branches": ["a1", "b1"]}, "join"),
            "a1": pause("a2"),
            "a2": script("A", end=True),
            "b1": pause("b2"),
            "b2": script("B"),
            "join": success("{% $global.a2 & $global.b2 %}"),
        },
        start="fan",
    )
    public, handle = await runner.start(wf)
    snapshot = await run_result(handle)
    assert snapshot.disposition == "AB"
    assert snapshot.context["fan"] == {"branches": ["a1", "b1"]}
    # Two one-second timers ran side by side: both started before either fired.
    history = await handle.fetch_history()
    kinds = [
        e.event_type
        for e in history.events
        if e.HasField("timer_started_event_attributes") or e.HasField("timer_fired_event_attributes")
    ]
    assert len(kinds) == 4
    assert kinds[0] == kinds[1]
    assert (await tap.node(public, "fan"))["status"] == "COMPLETED"


async def test_failed_branch_cancels_the_others_and_fails_the_node(runner: Runner, tap: EventTap) -> None:
    """One failing branch cancels its siblings (a long wait) and fails the PARALLEL node."""
    wf = definition(
        {
            "fan": state({"type": "PARALLEL", "branches": ["slow", "bad"]}, "join"),
            "slow": state({"type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 60}}, "after_slow"),
            "after_slow": script("never"),
            "bad": script("{% $boom() %}"),
            "join": success(),
            "handler": success("{% 'HANDLED ' & $global.lastError.message %}"),
        },
        start="fan",
        defaultFailureNode="handler",
    )
    public, snapshot = await runner.finish(wf)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.disposition is not None
    assert snapshot.disposition.startswith("HANDLED branch 'bad' failed: output:")
    assert "after_slow" not in snapshot.context
    assert (await tap.node(public, "fan"))["status"] == "FAILED"
