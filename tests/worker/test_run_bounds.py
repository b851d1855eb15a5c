"""A run's own bounds (context size, visits, PARALLEL branches, CHILD breadth): each fails cleanly, never wedges."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from drift_runtime.temporal import run_result
from drift_schema.nodes import child_key
from drift_schema.run import RunLimits, RunSnapshot, temporal_id
from drift_schema.workflow import WorkflowDefinition
from worker.worker_support import (
    TENANT,
    EventTap,
    Runner,
    definition,
    failure,
    running_worker,
    script,
    state,
    success,
)

BLOB = "x" * 250_000
"""One SCRIPT node's output in the context attack: under the per-output cap of 256 KiB."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def big_outputs(temporal_client: Client, nats_client: NatsClient) -> AsyncIterator[Runner]:
    """A worker with the production per-output cap (256 KiB), so twelve outputs add up past Temporal's 2 MB."""
    async with running_worker(temporal_client, nats_client, "run-bounds", node_output_max_bytes=256 * 1024) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def crowded(temporal_client: Client, nats_client: NatsClient) -> AsyncIterator[Runner]:
    """A worker whose tenants may each have `CROWD` runs running."""
    async with running_worker(temporal_client, nats_client, "run-crowd", tenant_max_running_runs=CROWD) as running:
        yield running


CROWD = 3


async def result(handle: WorkflowHandle[Any, RunSnapshot], timeout: float = 30) -> RunSnapshot:
    """The run's final snapshot; a run that wedges fails the test at `timeout` (and is terminated)."""
    try:
        async with asyncio.timeout(timeout):
            return await run_result(handle)
    except TimeoutError:
        await handle.terminate("wedged: the test gave up")
        raise


async def test_outputs_past_the_context_bound_fail_the_node_that_crosses_it(big_outputs: Runner) -> None:
    """Twelve 250 KB outputs (3 MB in all, Temporal refuses 2 MB): the node that would cross the context
    bound fails with a clear error, the run follows its failure path and ends, and never flips back."""
    names = [f"s{i}" for i in range(12)]
    states = {
        name: script("{% $global.params.blob %}", nxt) for name, nxt in zip(names, [*names[1:], "done"], strict=True)
    }
    wf = definition(
        {**states, "done": success(), "oops": failure("{% $global.lastError.message %}")},
        start="s0",
        defaultFailureNode="oops",
    )
    _, handle = await big_outputs.start(wf, params={"blob": BLOB})
    snapshot = await result(handle)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    assert "would make the run's context" in snapshot.error_message
    assert f"over its limit of {RunLimits().max_context_bytes} bytes" in snapshot.error_message
    # The params and three outputs fit in 1 MiB; the fourth output would not.
    assert snapshot.context["lastError"]["node"] == "s3"
    assert "s3" not in snapshot.context
    described = await handle.describe()
    # Temporal agrees: the workflow closed, failing with the run (its status is what the Temporal UI shows).
    assert described.status == WorkflowExecutionStatus.FAILED


async def test_a_loop_of_large_outputs_keeps_each_workflow_task_small(big_outputs: Runner) -> None:
    """A loop rewriting a 250 KB output 24 times (6 MB of results, over gRPC's 4 MB per workflow task)
    completes: the run was terminated (GrpcMessageTooLarge) with no status event before."""
    wf = definition(
        {
            "s": script("{% $global.params.blob %}", "n"),
            "n": script("{% $exists($global.n) ? $global.n + 1 : 1 %}", "again"),
            "again": state(
                {
                    "type": "BRANCH",
                    "choices": [{"rule": "{% $global.n < 24 %}", "nextNode": "s"}],
                    "defaultNode": "done",
                }
            ),
            "done": success("{% $string($global.n) %}"),
        },
        start="s",
    )
    _, handle = await big_outputs.start(wf, params={"blob": BLOB})
    snapshot = await result(handle, timeout=60)
    assert (snapshot.workflow_status, snapshot.disposition) == ("COMPLETED", "24")


# A failing branch cancels its siblings' local activities; one that finished in the same instant has nothing
# left to cancel, and the SDK warns about it (benign).
@pytest.mark.filterwarnings("ignore:Cannot find activity to cancel for token:UserWarning")
async def test_a_parallel_of_large_outputs_fails_cleanly(big_outputs: Runner) -> None:
    """Twenty branches writing 250 KB each at once: the run fails at the context bound instead of being
    terminated for a workflow task over gRPC's 4 MB (the branches' results ride in one task)."""
    names = [f"b{i}" for i in range(20)]
    wf = definition(
        {
            "fan": state({"type": "PARALLEL", "branches": names}, "done"),
            **{name: script("{% $global.params.blob %}", end=True) for name in names},
            "done": success(),
        },
        start="fan",
    )
    _, handle = await big_outputs.start(wf, params={"blob": BLOB})
    snapshot = await result(handle, timeout=60)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    assert "would make the run's context" in snapshot.error_message


async def test_a_loop_that_never_exits_fails_past_its_visit_budget(runner: Runner, tap: EventTap) -> None:
    """A loop with no exit fails with a clear error once the run has made its budget of visits."""
    wf = definition(
        {
            "spin": script("{% $exists($global.spin) ? $global.spin + 1 : 1 %}", "again"),
            "again": state({"type": "BRANCH", "choices": [{"rule": "{% true %}", "nextNode": "spin"}]}),
        }
    )
    public, handle = await runner.start(wf, limits=RunLimits(max_visits=40))
    snapshot = await result(handle)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    assert "its budget of 40" in snapshot.error_message
    assert snapshot.context["spin"] == 20
    assert (await tap.status(public, "FAILED"))["errorMessage"] == snapshot.error_message


def fan_out(branches: int) -> WorkflowDefinition:
    names = [f"b{i}" for i in range(branches)]
    return definition(
        {
            "fan": state({"type": "PARALLEL", "branches": names}, "done"),
            **{name: script(i, end=True) for i, name in enumerate(names)},
            "done": success("{% $string($count($global.fan.branches)) %}"),
        },
        start="fan",
    )


async def test_a_parallel_past_its_branch_bound_fails_at_once(runner: Runner) -> None:
    """PARALLEL with 3,000 branches fails its node with a clear error instead of wedging the run's first task."""
    began = time.monotonic()
    _, handle = await runner.start(fan_out(3000))
    snapshot = await result(handle)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == "a PARALLEL node runs at most 100 branches; this one has 3000"
    assert time.monotonic() - began < 20


async def test_a_parallel_at_its_branch_bound_completes(runner: Runner) -> None:
    """The default bound is small enough that every branch runs within one short workflow task."""
    _, handle = await runner.start(fan_out(RunLimits().max_branches))
    snapshot = await result(handle)
    assert (snapshot.workflow_status, snapshot.disposition) == ("COMPLETED", "100")
    assert snapshot.context["b99"] == 99


FORKER = definition(
    {
        "left": state(
            {"type": "CHILD", "childWorkflowId": "forker", "childWorkflowVersion": "ACTIVE", "executionMode": "ASYNC"},
            "right",
        ),
        "right": state(
            {"type": "CHILD", "childWorkflowId": "forker", "childWorkflowVersion": "ACTIVE", "executionMode": "ASYNC"},
            "done",
        ),
        "done": success(),
    },
    id="forker",
)


async def test_children_that_start_themselves_stay_within_the_descendant_budget(runner: Runner, tap: EventTap) -> None:
    """Two ASYNC CHILD nodes that start their own workflow: the whole tree stays within the root's
    budget of descendants (without it, 511 runs), and the CHILD nodes past it fail with a clear error."""
    public, handle = await runner.start(
        FORKER, limits=RunLimits(max_descendants=10), children={child_key("forker", "ACTIVE"): FORKER}
    )
    await result(handle)
    query = f"WorkflowId STARTS_WITH '{temporal_id(TENANT, public)}'"
    # Visibility has no event to await: poll it, with a deadline, until every run of the tree has closed.
    deadline = time.monotonic() + 30
    while True:
        runs = [execution async for execution in runner.client.list_workflows(query)]
        if runs and all(r.status != WorkflowExecutionStatus.RUNNING for r in runs) and len(runs) > 1:
            await asyncio.sleep(0.5)
            again = [execution async for execution in runner.client.list_workflows(query)]
            if len(again) == len(runs):
                break
        assert time.monotonic() < deadline, f"the tree is still running: {len(runs)} runs"
        await asyncio.sleep(0.2)
    assert 1 < len(runs) <= 11

    def refused() -> list[dict[str, Any]]:
        return [
            event
            for events in tap.nodes.values()
            for event in events
            if event["workflowId"].startswith(public) and event["status"] == "FAILED"
        ]

    failed = await tap.wait_for(refused)
    assert "budget allows (10 in all" in failed[0]["error"]


HOLDER = definition(
    {
        "hold": state({"type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 20}}, "done"),
        "done": success(),
    },
    id="holder",
)


async def test_children_past_the_tenants_running_runs_limit_fail_their_node(crowded: Runner) -> None:
    """CHILD runs count towards the tenant's running-runs limit as starts do: past it the CHILD node fails
    with a clear error and no child is started."""
    spawn = {"type": "CHILD", "childWorkflowId": "holder", "childWorkflowVersion": "ACTIVE", "executionMode": "ASYNC"}
    names = [f"c{i}" for i in range(CROWD + 2)]
    wf = definition(
        {**{n: state(spawn, nxt) for n, nxt in zip(names, [*names[1:], "done"], strict=True)}, "done": success()},
        start="c0",
    )
    tenant = f"crowd{uuid.uuid4().hex[:6]}"
    _, handle = await crowded.start(wf, children={child_key("holder", "ACTIVE"): HOLDER}, tenant=tenant)
    snapshot = await result(handle)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == (f"the tenant has {CROWD} runs running, its limit: the child run was not started")
    started = [name for name in names if name in snapshot.context]
    assert 1 <= len(started) < CROWD
