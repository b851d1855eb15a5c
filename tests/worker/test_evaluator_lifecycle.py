"""The evaluator pool's processes start on demand, never past the pool's size, and exit after an idle spell."""

from __future__ import annotations

import asyncio

from drift_worker.evaluator import EvaluatorPool, PoolSettings
from worker.test_bounds import SLOW, _evaluate, _gone, _until
from worker.test_bounds import test_a_tenant_at_its_share_never_delays_another as share_is_kept


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
    pool = EvaluatorPool(PoolSettings(processes=1, tenant_share=1.0, node_timeout_ms=20_000, idle_exit_s=0.1))
    try:
        assert (await _evaluate(pool, SLOW)).output == 20000
    finally:
        await pool.close()


async def test_a_tenant_at_its_share_never_delays_another_on_a_cold_pool() -> None:
    """With no process started yet, another tenant still answers before a tenant's runaway evaluations end."""
    pool = EvaluatorPool(PoolSettings(processes=2, memory_mib=192, tenant_share=0.5, node_timeout_ms=1000))
    try:
        await share_is_kept(pool)
        assert len(pool.live_pids()) <= 2
    finally:
        await pool.close()
