"""Record the Temporal histories that `test_replay.py` replays (the determinism guard).

    uv run python tests/worker/record_histories.py [scenario ...]

Starts embedded Temporal and NATS in a temporary folder, a loopback HTTP stub and
an in-process worker, drives the example workflows (and one that touches every
node type) to their end, and writes each run's history as JSON under
`tests/worker/histories/`. Re-record only on purpose: a change that makes an old
history fail to replay would break runs that are in flight when it ships.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from worker_support import (
    TENANT,
    EventTap,
    Runner,
    Stub,
    count_to,
    definition,
    inline_bundle,
    script,
    standalone,
    state,
    success,
)

from drift_runtime.temporal import run_result
from drift_schema.nodes import child_key
from drift_schema.run import (
    DISCONNECTED_UPDATE,
    EVENT_UPDATE,
    RESUME_UPDATE,
    DisconnectedInput,
    DisconnectedResult,
    EventInput,
    ResumeInput,
    temporal_id,
)

HERE = Path(__file__).parent
HISTORIES = HERE / "histories"
EXAMPLES = HERE.parents[1] / "examples"

Scenario = Callable[[Runner, EventTap, Stub], Awaitable[list[tuple[str, WorkflowHandle[Any, Any]]]]]


async def resume(handle: WorkflowHandle[Any, Any], **selected: Any) -> None:
    await handle.execute_update(RESUME_UPDATE, ResumeInput(selected_options=selected, command_id=uuid.uuid4().hex))


async def hello_approval(runner: Runner, tap: EventTap, stub: Stub) -> list[tuple[str, WorkflowHandle[Any, Any]]]:
    """The greeting example, approved and rejected."""
    wf = inline_bundle(EXAMPLES / "hello-approval.json")["hello_approval"]
    recorded = []
    for decision in ("APPROVE", "REJECT"):
        public, handle = await runner.start(wf, {"name": "Ada"})
        await tap.status(public, "WAITING")
        await resume(handle, decision=decision)
        await run_result(handle)
        recorded.append((f"hello_approval_{decision.lower()}", handle))
    return recorded


async def return_request(runner: Runner, tap: EventTap, stub: Stub) -> list[tuple[str, WorkflowHandle[Any, Any]]]:
    """The return example: HTTP lookup, expression-built options, a choice, an HTTP POST."""
    wf = inline_bundle(EXAMPLES / "return-request.json")["return_request"]
    public, handle = await runner.start(wf, {"orderId": "o-1"}, enums={"ordersApi": stub.url("")})
    await tap.status(public, "WAITING")
    await resume(handle, refund_mode="WALLET")
    await run_result(handle)
    return [("return_request", handle)]


async def every_node(runner: Runner, tap: EventTap, stub: Stub) -> list[tuple[str, WorkflowHandle[Any, Any]]]:
    """HTTP, PARALLEL (timer + SYNC child), ON_EVENT, INSTRUCTION, BRANCH, SUCCESS, a disconnected node, a post node."""
    doubler = definition(
        {"double": script("{% $global.params.n * 2 %}", "done"), "done": success("DOUBLED")}, id="doubler"
    )
    wf = definition(
        {
            "fetch": state({"type": "HTTP", "request": {"url": stub.url("/json")}}, "fan"),
            "fan": state({"type": "PARALLEL", "branches": ["pause", "calc"]}, "await_go"),
            "pause": state({"type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 1}}),
            "calc": state({"type": "CHILD", "childWorkflowId": "doubler", "executionMode": "SYNC", "params": {"n": 2}}),
            "await_go": state({"type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "go"}}, "ask"),
            "ask": state(
                {"type": "INSTRUCTION", "view": {"inputOptions": [{"id": "ok", "possibleValues": [{"value": "Y"}]}]}},
                "route",
            ),
            "route": state(
                {
                    "type": "BRANCH",
                    "choices": [{"rule": "{% $global.ask.selectedOptions.ok = 'Y' %}", "nextNode": "done"}],
                }
            ),
            "done": success("{% 'ALL ' & $string($global.calc.context.double) %}"),
            "lookup": script("{% $global.fetch.n %}"),
            "audit": script("audited"),
        },
        start="fetch",
        postWorkflowCompletionNodes=["audit"],
    )
    public, handle = await runner.start(wf, children={child_key("doubler", "ACTIVE"): doubler})
    await tap.status(public, "WAITING")
    request = DisconnectedInput(node="lookup", parameters={}, command_id="d-1")
    await handle.execute_update(DISCONNECTED_UPDATE, request, result_type=DisconnectedResult)
    await handle.execute_update(EVENT_UPDATE, EventInput(event="go", payload={"x": 1}, command_id="e-1"))
    await tap.wait_for(lambda: tap.statuses(public).count("WAITING") >= 2)
    await resume(handle, ok="Y")
    snapshot = await run_result(handle)
    child_id = snapshot.context["calc"]["workflowId"]
    child = runner.client.get_workflow_handle(temporal_id(TENANT, child_id))
    return [("every_node", handle), ("every_node_child", child)]


async def counted_loop(runner: Runner, iterations: int) -> WorkflowHandle[Any, Any]:
    """Run a loop counting to `iterations` until it finishes; the handle of its last run."""
    wf = definition({**count_to(iterations), "done": success("{% $string($global.count) %}")}, start="count")
    _, handle = await runner.start(wf)
    await run_result(handle)
    return handle


def first_run(runner: Runner, handle: WorkflowHandle[Any, Any]) -> WorkflowHandle[Any, Any]:
    """The first run of `handle`'s continue-as-new chain."""
    return runner.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)


async def long_loop(runner: Runner, tap: EventTap, stub: Stub) -> list[tuple[str, WorkflowHandle[Any, Any]]]:
    """A 300-iteration loop: its first run ends in continue-as-new, its last run finishes."""
    handle = await counted_loop(runner, 300)
    last = runner.client.get_workflow_handle(handle.id)
    return [("long_loop_first_run", first_run(runner, handle)), ("long_loop_last_run", last)]


async def failure_paths(runner: Runner, tap: EventTap, stub: Stub) -> list[tuple[str, WorkflowHandle[Any, Any]]]:
    """HTTP retried once, a PARALLEL whose FAILURE branch cancels a timer, the default failure path
    (an ASYNC child, an ABSOLUTE_WAIT from an expression, a literal one in the past), an ON_EVENT timeout."""
    doubler = definition(
        {"double": script("{% $global.params.n * 2 %}", "done"), "done": success("DOUBLED")}, id="doubler"
    )
    wf = definition(
        {
            "fetch": state(
                {
                    "type": "HTTP",
                    "request": {"url": stub.url(f"/flaky/{uuid.uuid4().hex}"), "query": {"fail": 1}},
                    "retry": {"maxAttempts": 2, "initialIntervalMs": 50},
                },
                "fan",
            ),
            "fan": state({"type": "PARALLEL", "branches": ["slow", "bad"]}, "done"),
            "slow": state({"type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 30}}),
            "bad": state({"type": "FAILURE", "error": "branch broke"}, end=True),
            "handler": state(
                {"type": "CHILD", "childWorkflowId": "doubler", "executionMode": "ASYNC", "params": {"n": 3}}, "soon"
            ),
            "soon": state(
                {
                    "type": "WAIT",
                    "config": {"waitType": "ABSOLUTE_WAIT", "timestamp": "{% $fromMillis($millis() + 500) %}"},
                },
                "past",
            ),
            "past": state(
                {"type": "WAIT", "config": {"waitType": "ABSOLUTE_WAIT", "timestamp": "2001-02-03T04:05:06Z"}}, "hold"
            ),
            "hold": state({"type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "never", "timeoutSeconds": 1}}),
            "done": success(),
        },
        start="fetch",
        defaultFailureNode="handler",
    )
    _, handle = await runner.start(wf, children={child_key("doubler", "ACTIVE"): doubler})
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "FAILED", snapshot
    return [("failure_paths", handle)]


async def segments(runner: Runner, tap: EventTap, stub: Stub) -> list[tuple[str, WorkflowHandle[Any, Any]]]:
    """Pure nodes in segments: a chain and a BRANCH loop in one, a timer between segments, a node failing
    inside a segment (to the default failure path, itself a segment), then SUCCESS."""
    wf = definition(
        {
            "a": script("{% ($global.a ? $global.a : 0) + 1 %}", "b"),
            "b": script("{% $global.a * 10 %}", "loop"),
            "loop": state(
                {
                    "type": "BRANCH",
                    "choices": [{"rule": "{% $global.a < 3 %}", "nextNode": "a"}],
                    "defaultNode": "pause",
                }
            ),
            "pause": state({"type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 1}}, "c"),
            "c": script("{% $global.b + 1 %}", "broken"),
            "broken": script("{% $nope() %}", "done"),
            "recover": script("{% 'recovered from ' & $global.lastError.node %}", "done"),
            "done": success("{% $global.recover %}"),
        },
        start="a",
        defaultFailureNode="recover",
    )
    _, handle = await runner.start(wf)
    snapshot = await run_result(handle)
    assert snapshot.disposition == "recovered from broken", snapshot
    return [("segments", handle)]


async def segmented_loop(runner: Runner, tap: EventTap, stub: Stub) -> list[tuple[str, WorkflowHandle[Any, Any]]]:
    """A loop of pure nodes past a run's visit budget in segments: its first run ends in continue-as-new."""
    handle = await counted_loop(runner, 5100)
    return [("segmented_loop_first_run", first_run(runner, handle))]


async def one_marker(runner: Runner, tap: EventTap, stub: Stub) -> list[tuple[str, WorkflowHandle[Any, Any]]]:
    """Every node type, the failure paths and segments again, recorded with one patch marker for all patches."""
    recorded = [
        *await every_node(runner, tap, stub),
        *await failure_paths(runner, tap, stub),
        *await segments(runner, tap, stub),
    ]
    return [(f"one_marker_{name}", handle) for name, handle in recorded]


SCENARIOS: tuple[Scenario, ...] = (
    hello_approval,
    return_request,
    every_node,
    long_loop,
    failure_paths,
    segments,
    segmented_loop,
    one_marker,
)


async def main(names: list[str]) -> None:
    """Record every scenario, or only those named (so new ones never re-record the old histories)."""
    chosen = [scenario for scenario in SCENARIOS if not names or scenario.__name__ in names]
    HISTORIES.mkdir(exist_ok=True)
    async with standalone() as local:
        for scenario in chosen:
            for name, handle in await scenario(local.runner, local.tap, local.stub):
                history = await handle.fetch_history()
                (HISTORIES / f"{name}.json").write_text(history.to_json() + "\n")
                print(f"recorded {name}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
