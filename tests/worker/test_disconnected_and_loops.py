"""Disconnected nodes (the `disconnected` update), long loops with continue-as-new, and history cost per node."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from drift_runtime.temporal import run_result
from drift_schema.run import (
    DISCONNECTED_UPDATE,
    EVENT_UPDATE,
    STATE_QUERY,
    DisconnectedInput,
    DisconnectedResult,
    EventInput,
    RunSnapshot,
    temporal_id,
)
from drift_worker.workflow import CONTINUE_AS_NEW_AFTER_SEGMENTED_VISITS
from worker.worker_support import TENANT, EventTap, Runner, Stub, count_to, definition, script, state, success

# Two visits per iteration: past the visit budget of a run (of pure nodes in segments), so the loop continues as new.
LOOP_ITERATIONS = CONTINUE_AS_NEW_AFTER_SEGMENTED_VISITS // 2 + 100
LOOKUP = state(
    {"type": "SCRIPT", "parameters": ["who"], "output": "{% 'hi ' & $params.who & ' from ' & $global.params.place %}"},
    parameters={"who": "{% 'state default' %}"},
)


def waiting_flow(stub: Stub) -> Any:
    return definition(
        {
            "hold": state({"type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "go"}}, "done"),
            "done": success(),
            "lookup": LOOKUP,
            "fetch": state({"type": "HTTP", "request": {"url": stub.url("/json")}}),
            "broken": state({"type": "SCRIPT", "output": "{% $nope() %}"}),
            "ask": state({"type": "INSTRUCTION", "view": {"inputOptions": []}}),
        },
        start="hold",
    )


async def disconnected(handle: Any, node: str, **parameters: Any) -> DisconnectedResult:
    request = DisconnectedInput(node=node, parameters=parameters, command_id=f"d-{node}")
    result: DisconnectedResult = await handle.execute_update(
        DISCONNECTED_UPDATE, request, result_type=DisconnectedResult
    )
    return result


async def test_disconnected_nodes_run_against_the_context_without_moving_the_run(
    runner: Runner, stub: Stub, tap: EventTap
) -> None:
    """A disconnected state runs with the run's context and the body's parameters; the run stays as it was."""
    public, handle = await runner.start(waiting_flow(stub), {"place": "Paris"})
    await tap.status(public, "WAITING")
    own = await disconnected(handle, "lookup")
    assert (own.status, own.response) == ("SUCCESS", "hi state default from Paris")
    overridden = await disconnected(handle, "lookup", who="{% 'Ada' %}")
    assert overridden.response == "hi Ada from Paris"
    fetched = await disconnected(handle, "fetch")
    assert fetched.status == "SUCCESS"
    assert fetched.response["ok"] is True
    broken = await disconnected(handle, "broken")
    assert broken.status == "FAILURE"
    assert broken.response["error"].startswith("output:")
    snapshot = await handle.query(STATE_QUERY, result_type=RunSnapshot)
    assert snapshot.workflow_status == "WAITING"
    assert snapshot.current_node == "hold"
    assert "lookup" not in snapshot.context
    await handle.execute_update(EVENT_UPDATE, EventInput(event="go", payload=1, command_id="go"))
    assert (await run_result(handle)).workflow_status == "COMPLETED"
    assert tap.statuses(public) == ["RUNNING", "WAITING", "RUNNING", "COMPLETED"]


async def test_disconnected_validator_refuses_unknown_and_waiting_nodes(
    runner: Runner, stub: Stub, tap: EventTap
) -> None:
    """An unknown state is NOT_FOUND; a node that would wait (INSTRUCTION) is INVALID; the run is untouched."""
    public, handle = await runner.start(waiting_flow(stub))
    await tap.status(public, "WAITING")
    for node, code in (("ghost", "NOT_FOUND"), ("ask", "INVALID")):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await disconnected(handle, node)
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == code
    await handle.execute_update(EVENT_UPDATE, EventInput(event="go", payload=1, command_id="go"))
    assert (await run_result(handle)).workflow_status == "COMPLETED"


def counting_loop(iterations: int, then: dict[str, Any]) -> Any:
    """`count` increments `$global.count`, `again` loops back until `iterations`, then `then`."""
    return definition(
        {
            **count_to(iterations, "after"),
            "after": then,
            "done": success("{% 'counted ' & $string($global.count) & ' then ' & $string($global.after) %}"),
        },
        start="count",
    )


async def test_long_loop_continues_as_new_carrying_context_and_waits(runner: Runner, tap: EventTap) -> None:
    """A loop past a run's visit budget continues-as-new on its own (each run's history stays small), carrying
    the context and the pinned definition, and an event wait after it still works."""
    iterations = LOOP_ITERATIONS
    wait_for_go = state({"type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "go"}}, "done")
    public, handle = await runner.start(counting_loop(iterations, wait_for_go))
    await tap.status(public, "WAITING", timeout=120)
    await handle.execute_update(EVENT_UPDATE, EventInput(event="go", payload="went", command_id="go"))
    snapshot = await run_result(handle)
    assert snapshot.disposition == f"counted {iterations} then went"
    first_run = runner.client.get_workflow_handle(temporal_id(TENANT, public), run_id=handle.first_execution_run_id)
    history = await first_run.fetch_history()
    assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    assert len(history.events) < 2_000
    # Node events keep distinct ids across the runs of the chain.
    await tap.wait_for(lambda: len(tap.nodes[public]) >= 2 * iterations + 1)
    ids = [event["eventId"] for event in tap.nodes[public]]
    assert len(ids) == len(set(ids)) >= 2 * iterations
    seqs = [event["seq"] for event in tap.workflow[public]]
    assert seqs == sorted(seqs)


async def test_failure_path_state_survives_continue_as_new(runner: Runner) -> None:
    """A run already on its default failure path still fails (rather than re-entering it) after continuing
    as new: `start` fails into the `count` loop, which continues-as-new, then `after` fails the run."""
    loop = counting_loop(LOOP_ITERATIONS, script("{% $nope() %}", "done"))
    states = {**loop.states, "start": state({"type": "SCRIPT", "output": "{% $nope() %}"}, "done")}
    wf = msgspec.structs.replace(loop, states=states, start_node="start", default_failure_node="count")
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.context["count"] == LOOP_ITERATIONS
    assert snapshot.context["lastError"]["node"] == "after"


async def test_pure_nodes_cost_at_most_a_twentieth_of_a_history_event_each(runner: Runner) -> None:
    """Measured: the marginal history events per pure (SCRIPT) node, from runs of 2 and 42 such nodes
    (one segment each: the same events whatever its length)."""

    def chain(length: int) -> Any:
        states = {f"s{i}": script(f"{{% {i} %}}", f"s{i + 1}") for i in range(length)}
        return definition({**states, f"s{length}": success()}, start="s0")

    lengths = {}
    for length in (2, 42):
        _, handle = await runner.start(chain(length))
        await run_result(handle)
        lengths[length] = len((await handle.fetch_history()).events)
    per_node = (lengths[42] - lengths[2]) / 40
    print(f"history events: 2 nodes -> {lengths[2]}, 42 nodes -> {lengths[42]}; {per_node:.2f} per pure node")
    assert per_node <= 0.05
