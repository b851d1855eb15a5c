"""Expression bounds on a real worker: time, depth, ranges and a node's `timeoutMs` fail the node, naming the field."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from temporalio.client import Client

from drift_runtime.temporal import run_result
from drift_schema import expressions
from drift_worker.app import build_worker
from drift_worker.evaluator import NODE, EvaluationTimeout, EvaluatorPool, MemoryBoundExceeded, PoolSettings
from drift_worker.model import NodeResult, NodeTask
from drift_worker.ssrf import Guard, guarded_client
from worker.worker_support import Runner, definition, script, state, success, worker_settings

# Roughly a second of work for jsonata-python on this kind of machine: well over 150 ms, far under a hang.
SLOW = "{% $count($map([1..20000], function($x) { $x * 2 })) %}"


async def test_runaway_recursion_fails_the_node_naming_the_field(runner: Runner) -> None:
    """Endless recursion stops at its depth or time bound and fails the node; the message names `output`."""
    message = await runner.script_failure("{% ($f := function($x) { $f($x + 1) }; $f(1)) %}", "loop")
    assert message.startswith("output: ")


async def test_breach_in_a_parameter_names_the_parameter(runner: Runner) -> None:
    """A bound breached while resolving a parameter names `parameters/<name>`, into the default failure path."""
    wf = definition(
        {
            "use": state(
                {"type": "SCRIPT", "parameters": ["n"], "output": "{% $params.n %}"},
                "done",
                parameters={"n": "{% $count([1..500000]) %}"},
            ),
            "done": success(),
            "handler": success("{% $global.lastError.message %}"),
        },
        start="use",
        defaultFailureNode="handler",
    )
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.disposition == "parameters/n: range of 500000 items exceeds the limit of 100000"


async def test_node_timeout_bounds_a_pure_node_and_fails_it(runner: Runner) -> None:
    """A SCRIPT slower than its own `timeoutMs` fails (once, clearly) instead of being retried forever."""
    slow = state({"type": "SCRIPT", "output": SLOW, "timeoutMs": 150}, "done")
    wf = definition({"slow": slow, "done": success()})
    _, handle = await runner.start(wf)
    async with asyncio.timeout(30):
        snapshot = await run_result(handle)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    # Whichever stops it first: the activity's deadline, or the expression's time bound capped by timeoutMs.
    assert "time limit of 150 ms" in snapshot.error_message or snapshot.error_message.startswith("output: ")


# --------------------------------------------------------------------------- the evaluator pool

RUNAWAY = "{% $count($distinct([1..100000])) %}"
"""A single builtin call running for minutes: the expression's own time checks never see it."""
PATIENT = dataclasses.replace(expressions.DEFAULT_BOUNDS, timeout_ms=20_000)
"""Time enough that the memory bound, not the time bound, stops a hog even on a busy machine."""
MEMORY_HOG = "{% $count($map([1..10000], function($i) { $pad('', 100000, 'x') })) %}"
"""A gigabyte of strings, 100 KB at a time."""


def _task(output: str, tenant: str = "acme", instance: str = "s") -> NodeTask:
    return msgspec.convert(
        {
            "tenant": tenant,
            "workflowId": "wf",
            "definitionId": "def",
            "definitionVersion": None,
            "instance": instance,
            "node": {"id": "n", "type": "SCRIPT", "output": output},
            "parameters": {},
            "context": {},
            "enums": {},
            "eventId": "e",
            "startedAt": "2026-01-01T00:00:00.000Z",
        },
        NodeTask,
    )


def _gone(pid: int) -> bool:
    """Whether process `pid` no longer exists (killed and reaped)."""
    return not Path(f"/proc/{pid}").exists()


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll `condition` with a deadline (a process's exit has no event this side can await)."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


@pytest_asyncio.fixture(loop_scope="session")
async def small_pool() -> AsyncIterator[EvaluatorPool]:
    """Two warm evaluator processes, one per tenant at most, a 192 MiB bound and a 1 s node deadline."""
    pool = EvaluatorPool(PoolSettings(processes=2, memory_mib=192, tenant_share=0.5, node_timeout_ms=1000))
    await pool.start()
    yield pool
    await pool.close()


async def _evaluate(
    pool: EvaluatorPool,
    output: str,
    tenant: str = "acme",
    timeout_ms: int = 0,
    bounds: expressions.Bounds = expressions.DEFAULT_BOUNDS,
) -> NodeResult:
    return await pool.evaluate(NODE, _task(output, tenant), bounds, 256 * 1024, timeout_ms)


async def test_a_runaway_builtin_is_killed_at_its_deadline_and_replaced(small_pool: EvaluatorPool) -> None:
    """A builtin past the node deadline has its process SIGKILLed (the work stops) and a fresh one takes its place."""
    before = set(small_pool.pids())
    with pytest.raises(EvaluationTimeout):
        await _evaluate(small_pool, RUNAWAY)
    after = set(small_pool.pids())
    killed = before - after
    assert len(killed) == 1
    await _until(lambda: all(_gone(pid) for pid in killed))
    assert (await _evaluate(small_pool, "{% 1 + 1 %}")).output == 2


async def test_memory_past_the_bound_fails_the_evaluation_clearly(small_pool: EvaluatorPool) -> None:
    """An expression allocating past the memory bound fails with the bound named; the pool carries on."""
    with pytest.raises(MemoryBoundExceeded, match="exceeded the memory bound of 192 MiB"):
        await _evaluate(
            small_pool, MEMORY_HOG, bounds=dataclasses.replace(expressions.DEFAULT_BOUNDS, timeout_ms=20_000)
        )
    assert (await _evaluate(small_pool, "{% 'still ' & 'here' %}")).output == "still here"


async def test_cancelled_evaluation_is_stopped_not_abandoned(small_pool: EvaluatorPool) -> None:
    """Cancelling an evaluation (its activity timed out) kills the process doing the work."""
    before = set(small_pool.pids())
    running = asyncio.ensure_future(_evaluate(small_pool, RUNAWAY, timeout_ms=60_000))
    await _until(lambda: len(small_pool.pids()) < len(before))
    busy = before - set(small_pool.pids())
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await _until(lambda: all(_gone(pid) for pid in busy))
    assert (await _evaluate(small_pool, "{% 2 * 3 %}")).output == 6


async def test_a_tenant_at_its_share_never_delays_another(small_pool: EvaluatorPool) -> None:
    """While one tenant's runaway evaluations hold (and queue for) its share, another tenant's answer at once."""
    attacks = [asyncio.ensure_future(_evaluate(small_pool, RUNAWAY, tenant="mallory")) for _ in range(4)]
    ordinary = asyncio.ensure_future(_evaluate(small_pool, "{% $sum([1, 2, 3]) %}", tenant="globex"))
    done, _ = await asyncio.wait([ordinary, *attacks], return_when=asyncio.FIRST_COMPLETED)
    assert done == {ordinary}
    assert ordinary.result().output == 6
    results = await asyncio.gather(*attacks, return_exceptions=True)
    assert all(isinstance(result, EvaluationTimeout) for result in results), results


async def test_queued_work_is_served_round_robin_across_tenants() -> None:
    """With every process busy, waiting evaluations are served tenant by tenant, not first come first served."""
    pool = EvaluatorPool(PoolSettings(processes=1, tenant_share=1.0, node_timeout_ms=5000))
    await pool.start()
    try:
        order: list[str] = []

        async def run(tenant: str, output: str) -> None:
            await _evaluate(pool, output, tenant=tenant)
            order.append(tenant)

        slow = "{% $count($map([1..3000], function($x) { $x })) %}"
        first = asyncio.ensure_future(run("mallory", slow))
        await asyncio.sleep(0)  # one step: `first` takes the only process before yielding
        assert not pool.pids()
        queued = [asyncio.ensure_future(run("mallory", "{% 1 %}")) for _ in range(3)]
        await asyncio.sleep(0)
        queued.append(asyncio.ensure_future(run("globex", "{% 2 %}")))
        await asyncio.gather(first, *queued)
        assert order.index("globex") <= 2
    finally:
        await pool.close()


async def test_runaway_builtin_on_a_worker_fails_the_node_and_others_complete(runner: Runner) -> None:
    """On a real worker a runaway builtin fails its node with the time limit; an ordinary run still completes."""
    attack = definition({"spin": script(RUNAWAY, "done"), "done": success()})
    ordinary = definition(
        {"sum": script("{% $sum([1, 2, 3]) %}", "done"), "done": success("{% $string($global.sum) %}")}
    )
    _, handle = await runner.start(attack)
    snapshot = await runner.run(ordinary)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.disposition == "6"
    async with asyncio.timeout(60):
        failed = await run_result(handle)
    assert failed.workflow_status == "FAILED"
    assert failed.error_message is not None
    assert "longer than its time limit" in failed.error_message


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tight_runner(temporal_client: Client, nats_client: NatsClient) -> AsyncIterator[Runner]:
    """A worker of its own whose evaluators have a 192 MiB bound (reached well within the time bound)."""
    task_queue = f"bounds-tests-{uuid.uuid4().hex[:8]}"
    settings = worker_settings(task_queue, evaluator_processes=2, evaluator_memory_mib=192)
    pool = EvaluatorPool(settings.evaluator_pool)
    await pool.start()
    try:
        async with (
            guarded_client(Guard(settings.http_allow_hosts)) as http,
            build_worker(temporal_client, nats_client.jetstream(), http, settings, [], pool=pool),
        ):
            yield Runner(temporal_client, task_queue)
    finally:
        await pool.close()


async def test_memory_hog_on_a_worker_fails_the_node_naming_the_bound(tight_runner: Runner) -> None:
    """On a real worker an expression past the memory bound fails its node, naming the bound in MiB."""
    assert "exceeded the memory bound of 192 MiB" in await tight_runner.script_failure(MEMORY_HOG, "hog")
    after = await tight_runner.run(definition({"ok": script("{% 40 + 2 %}", "done"), "done": success()}))
    assert after.workflow_status == "COMPLETED"
