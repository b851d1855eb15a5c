"""The interpreter's figures beyond P3: a chain of HTTP nodes, context growth, and the long loop (P4).

Each runs Drift on the drift-worker service and its baseline on the baseline worker, on the same
Temporal server in the same run, alternating run by run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from worker_support import Runner, Stub, definition, script, serving, state, success

from benchmarks.baseline_workflows import HTTP_CHAIN_WORKFLOW, LOOP_VISITS_PER_RUN, LOOP_WORKFLOW
from benchmarks.figures import chain, drift_chain
from benchmarks.report import Figure, Row, count, median, ms, ratio, x
from benchmarks.stack import BASELINE_TASK_QUEUE, Clients
from drift_schema.run import DEFAULT_MAX_CONTEXT_BYTES, DEFAULT_TASK_QUEUE
from drift_schema.workflow import WorkflowDefinition

HISTORY_LIMIT = 10_240
GOAL_ITERATIONS = 100_000
GOAL_LOOP_S = 60.0
HTTP_GOAL = 1.2
GROWTH_GOAL = 0.5
SMALL_CONTEXT = 1024
CONTEXT_HEADROOM = 4 * 1024
LARGE_CONTEXT = DEFAULT_MAX_CONTEXT_BYTES - CONTEXT_HEADROOM
"""1 MiB is also a run's context limit: the chain's own outputs need the last few KiB."""


def failed(key: str, title: str, method: str, error: BaseException) -> Figure:
    """A figure whose measurement raised: one row that misses its goal, naming the error."""
    message = f"{type(error).__name__}: {str(error)[:300]}"
    return Figure(key, title, method, [Row("measured", "", message, "", "completes", False)])


async def alternate(
    rounds: int, runs: int, sides: Mapping[str, Callable[[], Awaitable[float]]]
) -> dict[str, list[float]]:
    """`runs` runs per side per round, the sides taking turns run by run; every run's seconds."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds * runs):
        for name, side in sides.items():
            times[name].append(await side())
    return times


# ------------------------------------------------------------------ HTTP chain


def http_chain(url: str, nodes: int) -> WorkflowDefinition:
    """`nodes` HTTP nodes in a row, each a GET of `url`."""
    states = {
        f"h{i}": state(
            {"type": "HTTP", "request": {"url": url}},
            f"h{i + 1}" if i + 1 < nodes else None,
            end=i + 1 == nodes,
        )
        for i in range(nodes)
    }
    return definition(states, start="h0", id=f"http{nodes}")


async def http_figure(clients: Clients, nodes: int, rounds: int, runs: int) -> Figure:
    """HTTP chain: `nodes` HTTP nodes against a hand-written workflow of `nodes` activities, one loopback stub."""
    title = f"a chain of {nodes} HTTP nodes"
    method = (
        f"A chain of {nodes} HTTP nodes (each a GET of a loopback stub server's JSON route, served in the benchmark's "
        f"process) started straight on the drift-worker's task queue, against a hand-written workflow making the same "
        f"{nodes} calls, one Temporal activity per call (a shared httpx client, as a worker keeps one), on the "
        f"baseline worker. {count(runs, 'run')} per side per round, {count(rounds, 'round')}, alternating; median "
        f"wall time from start "
        f"to result. Every run is checked to have made exactly {nodes} calls."
    )
    try:
        async with serving(Stub()) as stub:
            url = stub.url("/json")
            wf = http_chain(url, nodes)

            async def counted(run: Callable[[], Awaitable[float]]) -> float:
                before = len(stub.seen)
                seconds = await run()
                if len(stub.seen) - before != nodes:
                    raise RuntimeError(f"a run made {len(stub.seen) - before} calls, not {nodes}")
                return seconds

            async def drift() -> float:
                seconds, _ = await drift_chain(clients, wf)
                return seconds

            async def baseline() -> float:
                began = time.perf_counter()
                await clients.temporal.execute_workflow(
                    HTTP_CHAIN_WORKFLOW,
                    [url] * nodes,
                    id=f"httpb-{uuid.uuid4().hex[:12]}",
                    task_queue=BASELINE_TASK_QUEUE,
                    result_type=dict,
                )
                return time.perf_counter() - began

            sides = {"baseline": lambda: counted(baseline), "drift": lambda: counted(drift)}
            await alternate(1, 1, sides)  # warm both (connections, the stub's first answers)
            times = await alternate(rounds, runs, sides)
    except Exception as error:
        return failed("HTTP", title, method, error)
    base, drift_s = median(times["baseline"]), median(times["drift"])
    slower = ratio(drift_s, base)
    return Figure(
        "HTTP",
        title,
        method,
        [
            Row("wall time per run", ms(base), ms(drift_s), x(slower), f"<= {HTTP_GOAL}x", slower <= HTTP_GOAL),
            Row("wall time per call", ms(base / nodes), ms(drift_s / nodes), "", ""),
        ],
    )


# ------------------------------------------------------------------ growth


async def growth_figure(clients: Clients, nodes: int, rounds: int, runs: int) -> Figure:
    """Growth: the pure chain with a 1 MiB context against the same chain with a 1 KiB context."""
    title = f"the {nodes}-node pure chain with a 1 MiB context"
    method = (
        f"The P3 chain ({nodes} SCRIPT nodes) started with a parameter of {LARGE_CONTEXT:,} bytes in its context "
        f"(1 MiB: a run's context limit of {DEFAULT_MAX_CONTEXT_BYTES:,} bytes less {CONTEXT_HEADROOM // 1024} KiB "
        f"for the chain's own outputs), against the same chain started with {SMALL_CONTEXT:,} bytes, both on the "
        f"drift-worker; no node reads the parameter, so the difference is what carrying the context costs. "
        f"{count(runs, 'run')} per side per round, {count(rounds, 'round')}, alternating; median wall time. Speed is "
        f"the 1 KiB time "
        f"over the 1 MiB time."
    )
    wf = chain(nodes)
    ids: dict[str, str] = {}

    def side(size: int, name: str) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            seconds, ids[name] = await drift_chain(clients, wf, {"blob": "x" * size})
            return seconds

        return run

    try:
        sides = {"small": side(SMALL_CONTEXT, "small"), "large": side(LARGE_CONTEXT, "large")}
        times = await alternate(rounds, runs, sides)
        sizes = {name: await history_bytes(clients, temporal_id) for name, temporal_id in ids.items()}
    except Exception as error:
        return failed("GROWTH", title, method, error)
    small, large = median(times["small"]), median(times["large"])
    speed = ratio(small, large)
    return Figure(
        "GROWTH",
        title,
        method,
        [
            Row("wall time per run", f"{ms(small)} (1 KiB)", f"{ms(large)} (1 MiB)", "", ""),
            Row(
                "speed (1 KiB time / 1 MiB time)",
                "1.00x",
                x(speed),
                x(speed),
                f">= {GROWTH_GOAL}x",
                speed >= GROWTH_GOAL,
            ),
            Row(
                "history of one run",
                f"{sizes['small'][0]} events, {sizes['small'][1] / 1024:,.0f} KiB",
                f"{sizes['large'][0]} events, {sizes['large'][1] / 1024:,.0f} KiB",
                "",
                "",
            ),
        ],
    )


async def history_bytes(clients: Clients, temporal_id: str) -> tuple[int, int]:
    """(events, encoded bytes) of a run's history."""
    history = await clients.temporal.get_workflow_handle(temporal_id).fetch_history()
    return len(history.events), sum(event.ByteSize() for event in history.events)


# ------------------------------------------------------------------ P4 loop


def loop_definition(iterations: int) -> WorkflowDefinition:
    """A back-edge loop of two pure nodes (SCRIPT `count`, BRANCH `again`), `iterations` times, then SUCCESS."""
    return definition(
        {
            "count": script("{% ($global.count ? $global.count : 0) + 1 %}", "again"),
            "again": state(
                {
                    "type": "BRANCH",
                    "choices": [{"rule": f"{{% $global.count < {iterations} %}}", "nextNode": "count"}],
                    "defaultNode": "done",
                }
            ),
            "done": success("{% 'counted ' & $string($global.count) %}"),
        },
        start="count",
        id="loop",
    )


@dataclass(frozen=True)
class Chain:
    """A continue-as-new chain once it finished: how many runs, and the longest history among them."""

    runs: int
    longest: int


async def walk_chain(clients: Clients, temporal_id: str, first_run_id: str) -> Chain:
    """Follow a chain of runs from its first run, run by run, through each ContinuedAsNew event."""
    runs, longest, run_id = 0, 0, first_run_id
    while run_id:
        history = await clients.temporal.get_workflow_handle(temporal_id, run_id=run_id).fetch_history()
        runs += 1
        longest = max(longest, len(history.events))
        last = history.events[-1] if history.events else None
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last is not None and last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else ""
        )
    return Chain(runs, longest)


@dataclass(frozen=True)
class LoopRun:
    """One loop measured: iterations, wall time, outcome and its chain of runs."""

    iterations: int
    seconds: float
    status: str
    chain: Chain

    @property
    def per_visit(self) -> float:
        return self.seconds / (2 * self.iterations)


async def drift_loop(clients: Clients, iterations: int) -> LoopRun:
    """The loop on the drift-worker, followed through every continue-as-new to its end."""
    runner = Runner(clients.temporal, DEFAULT_TASK_QUEUE, execution_timeout=None)
    began = time.perf_counter()
    _, handle = await runner.start(loop_definition(iterations))
    snapshot = await handle.result(follow_runs=True, rpc_timeout=None)
    elapsed = time.perf_counter() - began
    found = await walk_chain(clients, handle.id, handle.first_execution_run_id or handle.result_run_id or "")
    return LoopRun(iterations, elapsed, str(snapshot.workflow_status), found)


async def hand_written_loop(clients: Clients, iterations: int) -> LoopRun:
    """The same loop by hand on the baseline worker (two local activities per iteration)."""
    workflow_id = f"loopb-{uuid.uuid4().hex[:12]}"
    began = time.perf_counter()
    handle = await clients.temporal.start_workflow(
        LOOP_WORKFLOW, {"iterations": iterations, "count": 0}, id=workflow_id, task_queue=BASELINE_TASK_QUEUE
    )
    result = await handle.result(rpc_timeout=None)
    elapsed = time.perf_counter() - began
    if result["count"] != iterations:
        raise RuntimeError(f"hand-written loop counted {result['count']}")
    found = await walk_chain(clients, workflow_id, handle.first_execution_run_id or handle.result_run_id or "")
    return LoopRun(iterations, elapsed, "COMPLETED", found)


async def loop_figure(clients: Clients, iterations: int, baseline_iterations: int) -> Figure:
    """P4: the long loop on the drift-worker against a shorter hand-written loop, per visit."""
    title = f"a {iterations:,}-iteration loop"
    method = (
        f"A back-edge loop of two pure nodes (SCRIPT `count`, BRANCH `again`) run {iterations:,} times, so "
        f"{2 * iterations:,} node visits, started straight on the drift-worker's task queue and followed through "
        f"every continue-as-new; against a hand-written loop of the same shape on the baseline worker (a local "
        f"activity that counts, one that decides whether to go again, continue-as-new every {LOOP_VISITS_PER_RUN} "
        f"steps), run {baseline_iterations:,} times in the same run: the two compare per visit. Every run of each "
        f"chain's history is read to find the largest."
    )
    try:
        base = await hand_written_loop(clients, baseline_iterations)
        drift = await drift_loop(clients, iterations)
    except Exception as error:
        return failed("P4", title, method, error)
    return loop_rows(title, method, base, drift)


def loop_rows(title: str, method: str, base: LoopRun, drift: LoopRun) -> Figure:
    """P4's table from the two measured loops (a shorter Drift loop is judged on its time scaled to the goal's)."""
    projected = drift.seconds * GOAL_ITERATIONS / drift.iterations
    scaled = drift.iterations != GOAL_ITERATIONS
    speed = ratio(base.per_visit, drift.per_visit)
    notes = [
        f"Drift's chain: {drift.chain.runs} runs, {2 * drift.iterations / drift.chain.runs:,.0f} visits per run on "
        f"average; the hand-written chain: {base.chain.runs} runs."
    ]
    if scaled:
        notes.append(
            f"This run used {drift.iterations:,} iterations, not the goal's {GOAL_ITERATIONS:,}: the wall-time goal "
            f"is judged on the measured time scaled to {GOAL_ITERATIONS:,} iterations ({projected:.1f} s)."
        )
    return Figure(
        "P4",
        title,
        method,
        [
            Row("completes", "COMPLETED", drift.status, "", "COMPLETED", drift.status.endswith("COMPLETED")),
            Row(
                f"wall time ({'scaled to ' if scaled else ''}{GOAL_ITERATIONS:,} iterations)",
                "",
                f"{projected:.1f} s",
                "",
                f"<= {GOAL_LOOP_S:.0f} s",
                projected <= GOAL_LOOP_S,
            ),
            Row(
                "wall time measured",
                f"{base.seconds:.1f} s ({base.iterations:,} iterations)",
                f"{drift.seconds:.1f} s ({drift.iterations:,} iterations)",
                "",
                "",
            ),
            Row("time per node visit", ms(base.per_visit), ms(drift.per_visit), "", ""),
            Row("speed per visit (baseline / Drift)", "1.00x", x(speed), x(speed), "(info)"),
            Row(
                "largest history of any run",
                f"{base.chain.longest:,} events",
                f"{drift.chain.longest:,} events",
                "",
                f"<= {HISTORY_LIMIT:,}",
                drift.chain.longest <= HISTORY_LIMIT,
            ),
        ],
        notes,
    )
