"""The measurements P1..P6: each one times Drift and its baseline in the same run, interleaved."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import msgspec
from nats.aio.msg import Msg
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client as TemporalClient
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from worker_support import Runner, definition, inline_bundle, script

from benchmarks.baseline_workflows import CHAIN_WORKFLOW, UNTIL_STABLE_UPDATE
from benchmarks.report import descendants, percentile, rss_mib
from benchmarks.stack import BASELINE_TASK_QUEUE, BUNDLE, TENANT, BenchPlatform, Clients
from drift_schema import search
from drift_schema.run import DEFAULT_TASK_QUEUE, STATE_QUERY, WORKFLOW_NAME, RunInput, RunSnapshot, temporal_id
from drift_schema.statuses import WorkflowStatus
from drift_schema.workflow import WorkflowDefinition

FLOW = "bench_four"
STEP_TIMEOUT_S = 120.0
RECHECK_S = 5.0


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def flow_definition() -> WorkflowDefinition:
    """bench_four with every node inlined, as the dispatcher pins it."""
    return inline_bundle(BUNDLE)[FLOW]


def run_input(pinned: WorkflowDefinition, workflow_id: str) -> RunInput:
    """The RunInput the dispatcher builds for a start of bench_four (same context shape)."""
    return RunInput(
        tenant=TENANT,
        workflow_id=workflow_id,
        definition=pinned,
        context={
            "params": {"name": "B"},
            "issueDetail": None,
            "customer": None,
            "orderDetails": None,
            "threadContext": {"clientId": None, "userId": None},
        },
        command_id=f"cmd-{workflow_id}",
    )


def start_body(workflow_id: str, callback_url: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"workflow": {"id": FLOW}, "workflowId": workflow_id, "params": {"name": "B"}}
    if callback_url is not None:
        body["callbackUrl"] = callback_url
    return body


# ------------------------------------------------------------------ single calls


@dataclass(frozen=True)
class SyncCall:
    """One sync start: when it began (wall clock), how long until the client had its answer, its Temporal id."""

    temporal_id: str
    began_at: float
    """time.time() just before the call: the same clock the Temporal server stamps its history events with."""
    answer_s: float


async def drift_sync_call(bench: BenchPlatform) -> SyncCall:
    """One sync start through the gateway, answered WAITING."""
    workflow_id = new_id("p1d")
    began_at, began = time.time(), time.perf_counter()
    answer = await bench.gateway.post("/v3/workflow/start", json=start_body(workflow_id))
    elapsed = time.perf_counter() - began
    if answer.status_code != 200 or answer.json().get("workflowStatus") != "WAITING":
        raise RuntimeError(f"sync start answered {answer.status_code}: {answer.text[:300]}")
    return SyncCall(temporal_id(TENANT, workflow_id), began_at, elapsed)


async def drift_sync_start(bench: BenchPlatform) -> float:
    """One sync start through the gateway; seconds until it answered WAITING."""
    return (await drift_sync_call(bench)).answer_s


async def baseline_sync_call(clients: Clients, pinned: WorkflowDefinition) -> SyncCall:
    """One update-with-start straight to Temporal that returns at the same WAITING node."""
    workflow_id = new_id("p1b")
    operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        WORKFLOW_NAME,
        run_input(pinned, workflow_id),
        id=temporal_id(TENANT, workflow_id),
        task_queue=BASELINE_TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    began_at, began = time.time(), time.perf_counter()
    snapshot = await clients.temporal.execute_update_with_start_workflow(
        UNTIL_STABLE_UPDATE, start_workflow_operation=operation, result_type=RunSnapshot
    )
    elapsed = time.perf_counter() - began
    if snapshot.workflow_status != "WAITING" or snapshot.current_node != "ask":
        raise RuntimeError(f"baseline answered {snapshot.workflow_status} at {snapshot.current_node}")
    return SyncCall(temporal_id(TENANT, workflow_id), began_at, elapsed)


async def baseline_sync_start(clients: Clients, pinned: WorkflowDefinition) -> float:
    """One update-with-start; seconds until it answered WAITING."""
    return (await baseline_sync_call(clients, pinned)).answer_s


def waiting_recorded_at(events: Iterable[HistoryEvent]) -> float | None:
    """The server's time (epoch seconds) of the first history event that records DriftStatus=WAITING, if any.

    The run upserts its Drift status as a search attribute on every status change, so this is the
    moment Temporal durably holds "WAITING" (the workflow task that decided it has completed).
    """
    for event in events:
        if event.event_type != EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            continue
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        payload = fields.get(search.STATUS)
        if payload is not None and json.loads(payload.data) == WorkflowStatus.WAITING.value:
            return event.event_time.seconds + event.event_time.nanos / 1e9
    return None


async def recorded_waiting_s(clients: Clients, call: SyncCall) -> float:
    """Seconds from the call's start until Temporal recorded the run WAITING (long-polls its history)."""
    handle = clients.temporal.get_workflow_handle(call.temporal_id)
    seen: list[HistoryEvent] = []
    async with asyncio.timeout(STEP_TIMEOUT_S):
        async for event in handle.fetch_history_events(wait_new_event=True):
            seen.append(event)
            recorded = waiting_recorded_at([event])
            if recorded is not None:
                return recorded - call.began_at
    raise RuntimeError(f"{call.temporal_id} closed without recording WAITING ({len(seen)} events)")


# ------------------------------------------------------------------ latency rounds


@dataclass
class Latencies:
    """Per-round samples of one side."""

    rounds: list[list[float]] = field(default_factory=list)

    def per_round(self, fraction: float) -> list[float]:
        return [percentile(samples, fraction) for samples in self.rounds]

    @property
    def all(self) -> list[float]:
        return [s for r in self.rounds for s in r]


async def interleaved(
    sides: Mapping[str, Callable[[], Awaitable[float]]], samples: int, rounds: int, warmup: int
) -> dict[str, Latencies]:
    """Call each side in turn, `samples` times per round; the first `warmup` calls are discarded."""
    for _ in range(warmup):
        for call in sides.values():
            await call()
    found = {name: Latencies() for name in sides}
    for _ in range(rounds):
        for latencies in found.values():
            latencies.rounds.append([])
        for _ in range(samples):
            for name, call in sides.items():
                found[name].rounds[-1].append(await call())
    return found


@dataclass
class SyncLatencies:
    """P1's two clocks for one side: until the client had its answer, and until Temporal recorded WAITING."""

    answer: Latencies = field(default_factory=Latencies)
    recorded: Latencies = field(default_factory=Latencies)


async def sync_rounds(
    clients: Clients, sides: Mapping[str, Callable[[], Awaitable[SyncCall]]], samples: int, rounds: int
) -> dict[str, SyncLatencies]:
    """Call each side in turn, `samples` times per round; both clocks of every call.

    The history is read after the answer, before the next call, so reading it is never timed. After
    each round its runs (all WAITING) are terminated, so hundreds of idle runs do not pile up in the
    workers' caches while later figures are measured.
    """
    found = {name: SyncLatencies() for name in sides}
    for _ in range(rounds):
        started: list[str] = []
        for latencies in found.values():
            latencies.answer.rounds.append([])
            latencies.recorded.rounds.append([])
        for _ in range(samples):
            for name, call in sides.items():
                done = await call()
                started.append(done.temporal_id)
                found[name].answer.rounds[-1].append(done.answer_s)
                found[name].recorded.rounds[-1].append(await recorded_waiting_s(clients, done))
        await terminate(clients, started)
    return found


async def terminate(clients: Clients, temporal_ids: Iterable[str]) -> None:
    """Terminate runs a figure left open (best effort: one already gone is fine)."""

    async def one(temporal_id: str) -> None:
        with contextlib.suppress(Exception):
            await clients.temporal.get_workflow_handle(temporal_id).terminate("benchmark figure measured")

    await asyncio.gather(*(one(i) for i in temporal_ids))


# ------------------------------------------------------------------ P2 throughput


class WaitingTap:
    """Counts WAITING status events per workflow id off NATS (both paths' runs announce them).

    Core NATS is at most once (a slow subscriber may miss messages), so runs not heard of within
    RECHECK_S are asked for their state through Temporal's query; a run found WAITING that way
    counts from the moment it was found (a conservative bound on that burst's rate).
    """

    class _Status(msgspec.Struct):
        workflowId: str
        workflowStatus: str

    def __init__(self, temporal: TemporalClient) -> None:
        self.temporal = temporal
        self.waiting: set[str] = set()
        self.asked = 0
        self._changed = asyncio.Event()

    async def on_message(self, msg: Msg) -> None:
        status = msgspec.json.decode(msg.data, type=WaitingTap._Status)
        if status.workflowStatus == "WAITING":
            self.waiting.add(status.workflowId)
            self._changed.set()

    async def _ask(self, workflow_id: str) -> None:
        handle = self.temporal.get_workflow_handle(temporal_id(TENANT, workflow_id))
        with contextlib.suppress(Exception):
            snapshot = await handle.query(STATE_QUERY, result_type=RunSnapshot, rpc_timeout=timedelta(seconds=5))
            if snapshot.workflow_status == "WAITING":
                self.waiting.add(workflow_id)

    async def until(self, ids: set[str], timeout: float) -> set[str]:  # noqa: ASYNC109 - a deadline
        """Wait until every run of `ids` was WAITING (or the timeout); answer those that never were."""
        deadline = time.monotonic() + timeout
        while not ids <= self.waiting and time.monotonic() < deadline:
            self._changed.clear()
            try:
                async with asyncio.timeout(RECHECK_S):
                    await self._changed.wait()
            except TimeoutError:
                missing = ids - self.waiting
                self.asked += len(missing)
                await asyncio.gather(*(self._ask(workflow_id) for workflow_id in missing))
        return ids - self.waiting


@contextlib.asynccontextmanager
async def waiting_tap(clients: Clients) -> AsyncIterator[WaitingTap]:
    tap = WaitingTap(clients.temporal)
    subscription = await clients.nc.subscribe(f"drift.{TENANT}.evt.workflow.>", cb=tap.on_message)
    try:
        yield tap
    finally:
        await subscription.unsubscribe()


@dataclass
class Burst:
    """One burst of starts: how long until every start was accepted, and until every run was WAITING."""

    starts: int
    """Runs that reached WAITING."""
    accepted_s: float
    waiting_s: float
    lost: int = 0
    """Runs that never reached WAITING within the burst's timeout."""

    @property
    def rate(self) -> float:
        """Sustained starts per second: runs that reached WAITING per second of the burst."""
        return self.starts / self.waiting_s


async def burst(
    tap: WaitingTap, starts: int, concurrency: int, start_one: Callable[[str], Awaitable[None]], prefix: str
) -> Burst:
    """`starts` starts from `concurrency` callers at once; timed until all their runs were WAITING."""
    ids = [new_id(prefix) for _ in range(starts)]
    queue = list(reversed(ids))

    async def caller() -> None:
        while queue:
            await start_one(queue.pop())

    began = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(caller())
    accepted = time.perf_counter() - began
    missing = await tap.until(set(ids), STEP_TIMEOUT_S)
    return Burst(starts - len(missing), accepted, time.perf_counter() - began, len(missing))


def drift_async_start(bench: BenchPlatform, callback_url: str) -> Callable[[str], Awaitable[None]]:
    async def start(workflow_id: str) -> None:
        answer = await bench.gateway.post("/v3/workflow/start", json=start_body(workflow_id, callback_url))
        if answer.status_code != 202:
            raise RuntimeError(f"async start answered {answer.status_code}: {answer.text[:300]}")

    return start


def baseline_async_start(clients: Clients, pinned: WorkflowDefinition) -> Callable[[str], Awaitable[None]]:
    async def start(workflow_id: str) -> None:
        await clients.temporal.start_workflow(
            WORKFLOW_NAME,
            run_input(pinned, workflow_id),
            id=temporal_id(TENANT, workflow_id),
            task_queue=BASELINE_TASK_QUEUE,
        )

    return start


# ------------------------------------------------------------------ P3 chain


def chain(nodes: int) -> WorkflowDefinition:
    """`nodes` SCRIPT nodes in a row, each adding one to a counter; the last ends the run."""
    states = {
        f"s{i}": script(
            "{% ($global.count ? $global.count : 0) + 1 %}" if i == 0 else f"{{% $global.s{i - 1} + 1 %}}",
            f"s{i + 1}" if i + 1 < nodes else None,
            **({"end": True} if i + 1 == nodes else {}),
        )
        for i in range(nodes)
    }
    return definition(states, start="s0", id=f"chain{nodes}")


async def drift_chain(clients: Clients, wf: WorkflowDefinition, params: Any = None) -> tuple[float, str]:
    """One interpreter run of `wf` (with `params` in its context) on the drift-worker service; seconds and its id."""
    runner = Runner(clients.temporal, DEFAULT_TASK_QUEUE)
    began = time.perf_counter()
    _, handle = await runner.start(wf, params)
    snapshot = await handle.result()
    elapsed = time.perf_counter() - began
    if snapshot.workflow_status != "COMPLETED":
        raise RuntimeError(f"chain run ended {snapshot.workflow_status}: {snapshot.error_message}")
    return elapsed, handle.id


async def hand_written_chain(clients: Clients, steps: int) -> tuple[float, str]:
    """One run of the hand-written chain on the baseline worker; seconds and its Temporal id."""
    workflow_id = new_id("p3b")
    began = time.perf_counter()
    result = await clients.temporal.execute_workflow(
        CHAIN_WORKFLOW, steps, id=workflow_id, task_queue=BASELINE_TASK_QUEUE, result_type=dict
    )
    elapsed = time.perf_counter() - began
    if result["count"] != steps:
        raise RuntimeError(f"hand-written chain counted {result['count']}")
    return elapsed, workflow_id


async def history_length(clients: Clients, workflow_id: str) -> int:
    history = await clients.temporal.get_workflow_handle(workflow_id).fetch_history()
    return len(history.events)


# ------------------------------------------------------------------ P6 memory


class RssSampler:
    """Peak resident memory of each service while a block runs, sampled every `interval` seconds."""

    def __init__(self, pids: dict[str, int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], rss_mib(pid))

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.sample()


def idle_rss(pids: dict[str, int]) -> dict[str, float]:
    return {name: rss_mib(pid) for name, pid in pids.items()}


async def settled_rss(pids: dict[str, int], settle_s: float) -> dict[str, float]:
    """Idle memory once the workers have shed what they hold only while busy, waiting up to `settle_s`.

    A worker's expression evaluators are processes that exit after `DRIFT_EVALUATOR_IDLE_EXIT_S` (60 s) without
    work: an idle worker is one without them. Their exit is seen in /proc only, hence the polling.
    """
    workers = [pid for name, pid in pids.items() if name.startswith("worker")]
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        if not any(descendants(pid) for pid in workers):
            break
        await asyncio.sleep(0.5)
    return idle_rss(pids)
