"""The evaluator pool's processes start on demand, never past the pool's size, and exit after an idle spell."""

from __future__ import annotations

import asyncio

import pytest

from drift_schema import expressions
from drift_worker.evaluator import NODE, EvaluationTimeout, EvaluatorPool, PoolSettings
from worker.test_bounds import RUNAWAY, SLOW, _evaluate, _gone, _task, _until


async def test_processes_start_on_demand_one_at_a_time() -> None:
    """No process runs before the first evaluation; evaluations one after another use a single process."""
    pool = EvaluatorPool(PoolSettings(processes=3, tenant_share=1.0))
    try:
        assert pool.live_pids() == []
        for number in range(3):
            assert (await _evaluate(pool, f"{{% {number} + 1 %}}")).output == number + 1
        assert len(pool.live_pids()) == 1
    finally:
        await pool.close()


async def test_concurrent_demand_never_grows_past_the_pool_size() -> None:
    """Many evaluations at once start at most `processes` processes, and every one is answered."""
    pool = EvaluatorPool(PoolSettings(processes=2, tenant_share=1.0, node_timeout_ms=10_000))
    try:
        running = [asyncio.ensure_future(_evaluate(pool, f"{{% {n} * 2 %}}", tenant=f"t{n}")) for n in range(6)]
        await asyncio.sleep(0)  # every evaluation has asked for a process
        assert len(pool.live_pids()) == 2
        results = await asyncio.gather(*running)
        assert [result.output for result in results] == [n * 2 for n in range(6)]
        assert len(pool.live_pids()) == 2
    finally:
        await pool.close()


async def test_an_idle_process_exits_and_the_next_demand_starts_a_fresh_one() -> None:
    """A process idle past `idle_exit_s` exits (the pool holds none); the next evaluation starts a new one."""
    pool = EvaluatorPool(PoolSettings(processes=2, idle_exit_s=0.3))
    try:
        assert (await _evaluate(pool, "{% 'a' & 'b' %}")).output == "ab"
        [first] = pool.live_pids()
        await _until(lambda: _gone(first))
        assert pool.live_pids() == []
        assert (await _evaluate(pool, "{% 'c' & 'd' %}")).output == "cd"
        assert len(pool.live_pids()) == 1
        assert pool.live_pids() != [first]
    finally:
        await pool.close()


async def test_a_busy_process_never_exits_for_idleness() -> None:
    """An evaluation running longer than `idle_exit_s` completes on its process (idleness counts only when idle)."""
    pool = EvaluatorPool(PoolSettings(processes=1, tenant_share=1.0, node_timeout_ms=30_000, idle_exit_s=0.1))
    patient = expressions.Bounds(timeout_ms=30_000)
    try:
        result = await pool.evaluate(NODE, _task(SLOW), patient, 256 * 1024, 0)
        assert result.output == 20000
    finally:
        await pool.close()


async def test_a_tenant_at_its_share_never_delays_another_on_a_cold_pool() -> None:
    """On a cold pool, another tenant is answered while a tenant's runaways hold (and queue for) its share."""
    pool = EvaluatorPool(PoolSettings(processes=2, memory_mib=192, tenant_share=0.5, node_timeout_ms=3000))
    try:
        attacks = [asyncio.ensure_future(_evaluate(pool, RUNAWAY, tenant="mallory")) for _ in range(2)]
        await asyncio.sleep(0)  # the first starts a process, the second waits: mallory holds its share
        assert (await _evaluate(pool, "{% $sum([1, 2, 3]) %}", tenant="globex")).output == 6
        assert not any(attack.done() for attack in attacks)
        for attack in attacks:
            with pytest.raises(EvaluationTimeout):
                await attack
        assert len(pool.live_pids()) <= 2
    finally:
        await pool.close()
