"""P7: a MAP over many pure items against a hand-written fan-out, and the longest history of a 10,000-item MAP."""

from __future__ import annotations

import time

from worker_support import TENANT, Runner, definition, script, state, success

from benchmarks.baseline_workflows import FAN_OUT_WORKFLOW
from benchmarks.report import Figure, Row, median, ratio
from benchmarks.stack import BASELINE_TASK_QUEUE, Clients
from drift_schema.run import DEFAULT_TASK_QUEUE, temporal_id
from drift_schema.workflow import WorkflowDefinition
from drift_worker.nodes.map import SLICE_ITEMS

HISTORY_LIMIT = 10_240


def map_definition() -> WorkflowDefinition:
    """MAP over `[0..params.n - 1]`, each item one SCRIPT (`$item + 1`), 10 at a time."""
    each = state({"type": "MAP", "items": "{% [0..$global.params.n - 1] %}", "itemNode": "step"}, "done")
    return definition(
        {"each": each, "step": script("{% $item + 1 %}", end=True), "done": success()}, start="each", id="map"
    )


async def drift_map(clients: Clients, items: int) -> tuple[float, str, str]:
    """One MAP run on the drift-worker; seconds, its Temporal id and its first run id."""
    runner = Runner(clients.temporal, DEFAULT_TASK_QUEUE)
    began = time.perf_counter()
    public, handle = await runner.start(map_definition(), {"n": items})
    snapshot = await handle.result()
    elapsed = time.perf_counter() - began
    if snapshot.workflow_status != "COMPLETED" or len(snapshot.context["each"]) != items:
        raise RuntimeError(f"MAP run ended {snapshot.workflow_status}: {snapshot.error_message}")
    return elapsed, public, handle.result_run_id or ""


async def hand_written(clients: Clients, items: int) -> float:
    began = time.perf_counter()
    result = await clients.temporal.execute_workflow(
        FAN_OUT_WORKFLOW, items, id=f"p7b-{time.time_ns()}", task_queue=BASELINE_TASK_QUEUE, result_type=list
    )
    if len(result) != items:
        raise RuntimeError("hand-written fan-out lost items")
    return time.perf_counter() - began


async def longest_history(clients: Clients, public: str, run_id: str, items: int) -> tuple[int, int]:
    """(events of the MAP's own run, events of its longest slice run); runs started by `Runner` are `TENANT`'s."""
    own = len((await clients.temporal.get_workflow_handle(temporal_id(TENANT, public)).fetch_history()).events)
    chain = run_id.replace("-", "")[:8]
    slices = [0]
    for number in range(-(-items // SLICE_ITEMS) if items > SLICE_ITEMS else 0):
        slice_id = temporal_id(TENANT, f"{public}-each-1-{chain}-m{number}")
        slices.append(len((await clients.temporal.get_workflow_handle(slice_id).fetch_history()).events))
    return own, max(slices)


async def measure(clients: Clients, items: int, large: int, rounds: int) -> Figure:
    times: dict[str, list[float]] = {"baseline": [], "drift": []}
    for _ in range(rounds):
        times["baseline"].append(await hand_written(clients, items))
        seconds, _, _ = await drift_map(clients, items)
        times["drift"].append(seconds)
    large_seconds, public, run_id = await drift_map(clients, large)
    own, slice_events = await longest_history(clients, public, run_id, large)
    base, drift = median(times["baseline"]), median(times["drift"])
    speed = ratio(base, drift)
    longest = max(own, slice_events)
    return Figure(
        "P7",
        f"MAP over {items:,} pure items",
        f"A MAP over {items:,} items (each one SCRIPT node, 10 at a time) started straight on the drift-worker's "
        f"task queue, against a hand-written workflow doing the same ({items:,} local activities, 10 at a time, "
        f"results in item order) on the baseline worker; {rounds} rounds, alternating, median wall time. Then one "
        f"MAP over {large:,} items: its time and the longest history among its run and its slice runs "
        f"({SLICE_ITEMS} items each).",
        [
            Row("wall time per run", f"{base:.2f} s", f"{drift:.2f} s", "", ""),
            Row("speed (baseline time / Drift time)", "1.00x", f"{speed:.2f}x", f"{speed:.2f}x", ""),
            Row(f"{large:,}-item MAP wall time", "", f"{large_seconds:.1f} s", "", ""),
            Row(
                f"longest history of the {large:,}-item MAP (run {own}, slice {slice_events})",
                "",
                str(longest),
                "",
                f"<= {HISTORY_LIMIT:,}",
                longest <= HISTORY_LIMIT,
            ),
        ],
    )
