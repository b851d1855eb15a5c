"""`python -m benchmarks.evaluator [--nodes N] [--context N]`: what the evaluator pool costs per node.

The worker evaluates each node's expressions in a process of its evaluator pool
(drift_worker.evaluator) rather than on a thread of its own, so that a runaway is
killed and memory is bounded. This measures the price of that per node, on the P3
chain's node (`{% $global.s<i> + 1 %}`), against the thread the worker used before:

- in-thread: `asyncio.to_thread(run_request, request)` (the same evaluation, no bound on the work);
- pool: `EvaluatorPool.evaluate` (encode the task, pipe it to a warm process, decode the answer).

The context carries `--context` earlier node outputs (as the chain's context grows), since the task,
context included, crosses the pipe both ways. Answers the median microseconds per node of each and
their difference: the evaluator's round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import msgspec

from drift_schema import expressions
from drift_worker.evaluator import NODE, EvalRequest, EvaluatorPool, PoolSettings, run_request
from drift_worker.model import NodeTask

MAX_OUTPUT = 256 * 1024


def chain_task(index: int, context_size: int) -> NodeTask:
    """The P3 chain's node `s<index>`, with `context_size` earlier outputs in its context."""
    context: dict[str, Any] = {f"s{i}": i + 1 for i in range(context_size)}
    context.setdefault(f"s{index - 1}", index)
    return msgspec.convert(
        {
            "tenant": "bench",
            "workflowId": "chain",
            "definitionId": "chain",
            "definitionVersion": None,
            "instance": f"s{index}",
            "node": {"id": f"s{index}", "type": "SCRIPT", "output": f"{{% $global.s{index - 1} + 1 %}}"},
            "parameters": {},
            "context": context,
            "enums": {},
            "eventId": "e",
            "startedAt": "2026-01-01T00:00:00.000Z",
        },
        NodeTask,
    )


def _request(task: NodeTask) -> EvalRequest:
    return EvalRequest(op=NODE, task=task, bounds=expressions.DEFAULT_BOUNDS, max_output_bytes=MAX_OUTPUT)


async def measure(nodes: int, context_size: int) -> dict[str, float]:
    """Median microseconds per node: in a thread, and through a warm pool."""
    task = chain_task(context_size + 1, context_size)
    request = _request(task)
    pool = EvaluatorPool(PoolSettings(processes=2))
    await pool.start()
    try:
        threaded: list[float] = []
        pooled: list[float] = []
        for _ in range(20):  # warm both paths (compiled-expression caches, allocator)
            await asyncio.to_thread(run_request, request)
            await pool.evaluate(NODE, task, expressions.DEFAULT_BOUNDS, MAX_OUTPUT, 0)
        for _ in range(nodes):
            began = time.perf_counter()
            await asyncio.to_thread(run_request, request)
            threaded.append(time.perf_counter() - began)
            began = time.perf_counter()
            await pool.evaluate(NODE, task, expressions.DEFAULT_BOUNDS, MAX_OUTPUT, 0)
            pooled.append(time.perf_counter() - began)
    finally:
        await pool.close()
    thread_us = statistics.median(threaded) * 1e6
    pool_us = statistics.median(pooled) * 1e6
    return {"in_thread_us": thread_us, "pool_us": pool_us, "round_trip_us": pool_us - thread_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000, help="evaluations measured on each path")
    parser.add_argument("--context", type=int, nargs="*", default=[1, 50, 500], help="context sizes (outputs)")
    args = parser.parse_args()
    print("| context outputs | in-thread µs/node | pool µs/node | pool minus thread µs |")
    print("| ---: | ---: | ---: | ---: |")
    for size in args.context:
        result = asyncio.run(measure(args.nodes, size))
        print(f"| {size} | {result['in_thread_us']:.0f} | {result['pool_us']:.0f} | {result['round_trip_us']:+.0f} |")


if __name__ == "__main__":
    main()
