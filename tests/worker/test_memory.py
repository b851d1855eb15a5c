"""The worker gives memory back: cyclic garbage collected and malloc trimmed when idle, start-up frozen."""

from __future__ import annotations

import asyncio
import gc
import platform

from drift_runtime.process import freeze_start_up
from drift_worker.evaluator import EvaluatorPool, PoolSettings
from drift_worker.memory import release_idle_memory, resident_kib
from worker.test_bounds import _evaluate


class _Node:
    """An object in a reference cycle, as an evicted run's sandbox is (module dict <-> its functions)."""

    def __init__(self) -> None:
        self.me = self


def test_release_idle_memory_collects_cycles_and_trims() -> None:
    """Cyclic garbage is collected, the resident size is read before and after, and glibc's malloc is trimmed."""
    gc.disable()  # no automatic collection between making the garbage and releasing it
    try:
        for _ in range(1000):
            _Node()
        released = release_idle_memory()
    finally:
        gc.enable()
    assert released.collected >= 1000
    assert released.before_kib > 0 and released.after_kib > 0
    assert resident_kib() > 0
    assert released.trimmed == (platform.libc_ver()[0] == "glibc")


def test_tune_collector_freezes_start_up_and_keeps_the_collectors_pace() -> None:
    """What exists is frozen out of the collector; the generations' thresholds stay as they were."""
    threshold = gc.get_threshold()
    frozen = gc.get_freeze_count()
    try:
        freeze_start_up()
        assert gc.get_freeze_count() > frozen
        assert gc.get_threshold() == threshold
    finally:
        gc.unfreeze()


async def test_the_pool_reports_idle_once_idle_exits_leave_it_empty() -> None:
    """`on_idle` is called once every process has exited for idleness, not while one is still live."""
    idle = asyncio.Event()
    calls: list[list[int]] = []
    pool = EvaluatorPool(PoolSettings(processes=2, idle_exit_s=0.3), on_idle=lambda: (calls.append([]), idle.set()))
    try:
        assert (await _evaluate(pool, "{% 1 + 1 %}")).output == 2
        assert not calls
        async with asyncio.timeout(10):
            await idle.wait()
        assert pool.live_pids() == []
        assert len(calls) == 1
    finally:
        await pool.close()
