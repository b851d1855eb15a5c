"""Benchmark: a loop of N iterations (default 100,000) through a back-edge completes, continuing as new.

    uv run python tests/worker/bench_long_loop.py [iterations]

Each iteration is two pure nodes (SCRIPT `count`, BRANCH `again`), so N iterations
are 2N node visits. Embedded servers in a temporary folder; loopback only. Prints
the wall time, visits per second, and the longest history of any run in the chain.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from worker_support import count_to, definition, standalone, success


@dataclass(frozen=True)
class LoopRun:
    """What one loop run measured (also read by `python -m benchmarks`, figure P4)."""

    status: str
    disposition: Any
    iterations: int
    seconds: float
    runs: int
    longest_history: int


async def measure(iterations: int) -> LoopRun:
    """Run the loop once on a standalone worker; its outcome, wall time and longest history."""
    wf = definition(
        {
            **count_to(iterations),
            "done": success("{% 'counted ' & $string($global.count) %}"),
        },
        start="count",
    )
    async with standalone(tap=False) as local:
        began = time.monotonic()
        _, handle = await local.runner.start(wf)
        snapshot = await handle.result(follow_runs=True, rpc_timeout=None)
        elapsed = time.monotonic() - began
        longest, runs = 0, 0
        async for execution in local.runner.client.list_workflows(f"WorkflowId = '{handle.id}'"):
            runs += 1
            history = await local.runner.client.get_workflow_handle(handle.id, run_id=execution.run_id).fetch_history()
            longest = max(longest, len(history.events))
            assert execution.status in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW)
    return LoopRun(str(snapshot.workflow_status), snapshot.disposition, iterations, elapsed, runs, longest)


async def main(iterations: int) -> None:
    run = await measure(iterations)
    print(
        f"{run.status} {run.disposition!r}: {iterations} iterations ({2 * iterations} visits) "
        f"in {run.seconds:.1f}s = {2 * iterations / run.seconds:.0f} visits/s; "
        f"{run.runs} runs, longest history {run.longest_history} events"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
