"""The fault drills: each drives load, injects one fault, recovers, and counts what was acknowledged.

Every drill returns a `Result`; `checks.check` judges its ledger of acknowledged
commands from Temporal, the run-context store, the webhooks received and the event
stream into lost / duplicated / stuck counts, and each drill adds the checks of its
own fault (calls the downstream saw, answers of sync waiters) as further problems.
Every fault drill proves the fault hit work in flight (`Pressure`): sync waiters
parked in the gateway and commands the dispatcher had not acknowledged, counted at
the moment of the fault and required to be non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from nats.js.api import PubAck

from drift_cli.servers import ManagedProcess
from drift_dispatcher.partitions import FLOORS_BUCKET
from drift_schema import subjects
from drift_schema.api import WorkflowRef
from drift_schema.commands import StartCommand
from drift_schema.statuses import WorkflowStatus
from drills.checks import (
    Acked,
    EventLog,
    Ledger,
    Result,
    check,
    commands_unacknowledged,
    consumers_drained,
    quiesce,
    run_chain,
    stored_context,
    temporal_runs,
)
from drills.loopback import Downstream, WebhookReceiver
from drills.stack import TENANT, DrillStack, log_count, wait_for

HTTP_MAX_ATTEMPTS = 5
"""`retry.maxAttempts` of `drill_call` in bundle.json: the most calls one run may make."""
DOWNSTREAM_MAX_HOLD_S = 4.0
"""The longest notifier-kill's downstream holds a call: under `drill_call`'s 5 s `timeoutMs`."""
LOAD_AFTER_RECOVERY_S = 3.0
"""How long the load goes on against a restarted server."""


@dataclass(frozen=True)
class Sizes:
    """How much load each drill drives; the smoke set is small enough for CI."""

    http_runs: int
    dispatcher_runs: int
    sync_waiters: int
    webhook_runs: int
    nats_outage_s: float
    redis_calls: int
    temporal_outage_s: float
    ambiguous: int
    pressure_waiters: int
    """Sync starts parked in the gateway at each fault (Pressure)."""
    pressure_commands: int
    """Start commands the dispatcher has not acknowledged at each fault (Pressure)."""
    load_concurrency: int
    """Concurrent requests of each kind in the steady load (Load)."""
    order_runs: int
    """Runs of the webhook-order drill."""
    command_order_runs: int
    """Runs of the dispatcher-order drill (four commands each)."""
    settle_s: float


FULL = Sizes(
    http_runs=30,
    dispatcher_runs=200,
    sync_waiters=25,
    webhook_runs=25,
    nats_outage_s=5.0,
    redis_calls=20,
    temporal_outage_s=30.0,
    ambiguous=10,
    pressure_waiters=10,
    pressure_commands=20,
    load_concurrency=4,
    order_runs=10,
    command_order_runs=60,
    settle_s=240.0,
)
SMOKE = Sizes(
    http_runs=8,
    dispatcher_runs=40,
    sync_waiters=6,
    webhook_runs=6,
    nats_outage_s=2.0,
    redis_calls=6,
    temporal_outage_s=8.0,
    ambiguous=4,
    pressure_waiters=3,
    pressure_commands=5,
    load_concurrency=4,
    order_runs=3,
    command_order_runs=12,
    settle_s=150.0,
)


@dataclass
class Drill:
    """One drill: its name, what it injects and checks (for docs/reliability.md), and its body."""

    name: str
    title: str
    injects: str
    checks: str
    body: Callable[[Context, Result], Awaitable[None]]


class Context:
    """What every drill uses: the stack, the event tail, the loopback downstream and webhook receiver."""

    def __init__(
        self, stack: DrillStack, log: EventLog, downstream: Downstream, receiver: WebhookReceiver, sizes: Sizes
    ) -> None:
        self.stack = stack
        self.sizes = sizes
        self.log = log
        self.downstream = downstream
        self.receiver = receiver
        self.tag = uuid.uuid4().hex[:6]

    def ids(self, prefix: str, count: int) -> list[str]:
        return [f"{prefix}-{self.tag}-{i}" for i in range(count)]

    async def publish_start(
        self, workflow_id: str, definition: str, params: Any, msg_id: str | None = None, timeout_s: float = 5.0
    ) -> tuple[str, PubAck]:
        """Publish a start command straight to JetStream, as an upstream system does; (Nats-Msg-Id, PubAck)."""
        command = StartCommand(workflow=WorkflowRef(id=definition), workflow_id=workflow_id, params=params)
        msg_id = msg_id or uuid.uuid4().hex
        headers = {"Nats-Msg-Id": msg_id, subjects.WORKFLOW_ID_HEADER: workflow_id}
        ack = await self.stack.js.publish(
            subjects.command("drill", "start"), msgspec.json.encode(command), timeout=timeout_s, headers=headers
        )
        return msg_id, ack

    async def start_acked(self, ledger: Ledger, workflow_id: str, definition: str, params: Any) -> None:
        msg_id, _ = await self.publish_start(workflow_id, definition, params)
        ledger.add(Acked(workflow_id, command_id=msg_id))

    async def gateway_start(self, body: dict[str, Any], timeout_s: float = 60.0) -> httpx.Response | Exception:
        try:
            return await self.stack.http.post("/v3/workflow/start", json=body, timeout=timeout_s)
        except Exception as error:  # a transport failure is an answer the drill must count, not a crash
            return error

    async def sync_starts(
        self, definition: str, ids: list[str], params: dict[str, Any], sync_timeout_ms: int
    ) -> list[httpx.Response | Exception]:
        """Start `definition` synchronously once per id, all at once; the answers in the order of `ids`."""
        body = {"workflow": {"id": definition}, "params": params, "syncTimeoutMs": sync_timeout_ms}
        return await asyncio.gather(*(self.gateway_start({**body, "workflowId": w}) for w in ids))

    async def recover(self) -> None:
        """After a drill: every service ready again and nothing left pending, so drills do not bleed."""
        await self.stack.wait_healthy(120)
        await quiesce(self.stack, 120)


def _answer(response: httpx.Response | Exception) -> str:
    return str(response.status_code) if isinstance(response, httpx.Response) else type(response).__name__


def _unclear(response: httpx.Response | Exception) -> bool:
    """A 5xx or a transport failure (timeout): the command may have been published or not."""
    return not isinstance(response, httpx.Response) or response.status_code >= 500


def keep_answer(
    ledger: Ledger, result: Result, workflow_id: str, answer: httpx.Response | Exception, callback: bool = False
) -> None:
    """A gateway start's answer into the ledger: acknowledged, unclear (5xx, timeout) or refused (4xx: a problem)."""
    accepted = (202,) if callback else (200, 202)
    if isinstance(answer, httpx.Response) and answer.status_code in accepted:
        ledger.add(Acked(workflow_id, callback=callback))
    elif _unclear(answer):
        ledger.add_unclear(workflow_id, _answer(answer))
    else:
        result.problem(f"{workflow_id}: start answered {_answer(answer)}")


class Pressure:
    """Work in flight at a fault: sync waiters parked in the gateway and commands the dispatcher has not acked.

    `build()` freezes the dispatcher (SIGSTOP), sends sync starts through the gateway (they wait for
    their run) and start commands straight to JetStream, and waits until JetStream holds them all;
    `at_fault()` counts both at the moment of the fault and requires each to be non-zero; `thaw()`
    lets the dispatcher go on right after the fault; `finish()` keeps every waiter's answer.
    """

    def __init__(self, ctx: Context, prefix: str, sync_timeout_ms: int = 90000) -> None:
        self.ctx = ctx
        self.ids = ctx.ids(f"{prefix}-pw", ctx.sizes.pressure_waiters)
        self.direct = ctx.ids(f"{prefix}-pc", ctx.sizes.pressure_commands)
        self.sync_timeout_ms = sync_timeout_ms
        self.waiters: list[asyncio.Task[httpx.Response | Exception]] = []
        self.frozen = False

    async def build(self, ledger: Ledger) -> None:
        stack = self.ctx.stack
        before = await commands_unacknowledged(stack)
        stack.pause_service("dispatcher", True)
        self.frozen = True
        self.waiters = [
            asyncio.create_task(
                self.ctx.gateway_start(
                    {
                        "workflow": {"id": "drill_quick"},
                        "workflowId": w,
                        "params": {"n": 11},
                        "syncTimeoutMs": self.sync_timeout_ms,
                    },
                    timeout_s=self.sync_timeout_ms / 1000 + 30,
                )
            )
            for w in self.ids
        ]
        for workflow_id in self.direct:
            await self.ctx.start_acked(ledger, workflow_id, "drill_quick", {"n": 12})
        want = before + len(self.ids) + len(self.direct)

        async def stored() -> bool:
            return await commands_unacknowledged(stack) >= want

        # The gateway publishes each sync start before it waits: JetStream's count is the only sign.
        await wait_for(stored, 30, "the gateway published every parked sync start", interval=0.05)

    async def at_fault(self, result: Result) -> None:
        waiting = sum(1 for t in self.waiters if not t.done())
        unacked = await commands_unacknowledged(self.ctx.stack)
        result.figures["sync waiters pending at the fault"] = waiting
        result.figures["commands unacknowledged at the fault"] = unacked
        if waiting == 0:
            result.problem("no sync waiter was pending at the fault")
        if unacked == 0:
            result.problem("no command was unacknowledged at the fault")

    async def crash(self, ledger: Ledger, result: Result, server: str) -> None:
        """Park the waiters and commands, crash `server` (its pid in the figures), then let the dispatcher go."""
        await self.build(ledger)
        await self.at_fault(result)
        result.figures["killed"] = self.ctx.stack.crash_server(server)
        self.thaw()

    def thaw(self) -> None:
        if self.frozen:
            self.ctx.stack.pause_service("dispatcher", False)
            self.frozen = False

    async def finish(self, ledger: Ledger, result: Result) -> None:
        self.thaw()
        answers = await asyncio.gather(*self.waiters)
        result.figures["answers of the parked sync waiters"] = dict(
            sorted(Counter(_answer(a) for a in answers).items())
        )
        for workflow_id, answer in zip(self.ids, answers, strict=True):
            keep_answer(ledger, result, workflow_id, answer)


# -- 1 ------------------------------------------------------------------------------------------


async def worker_kill(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    downstream = ctx.downstream
    ledger = Ledger()
    ids = ctx.ids("d1", sizes.http_runs)
    pressure = Pressure(ctx, "d1")
    downstream.hold()
    try:
        for workflow_id in ids:
            await ctx.start_acked(ledger, workflow_id, "drill_http", {"url": downstream.work_url(workflow_id)})
        if not await downstream.holds_within(lambda: all(downstream.calls.get(w) for w in ids), 60):
            result.problem("not every run reached its HTTP call before the kill")
        await pressure.build(ledger)
        result.figures["calls in flight at the kill"] = downstream.in_flight
        await pressure.at_fault(result)
        ctx.stack.kill_service("worker-1")
    finally:
        pressure.thaw()
        downstream.release()
    await ctx.stack.start_service("worker-1")
    await pressure.finish(ledger, result)
    await check(ctx.stack, ctx.log, ledger, result, sizes.settle_s, ctx.receiver)
    calls = [downstream.calls.get(w, []) for w in ids]
    result.figures["downstream calls"] = sum(len(c) for c in calls)
    result.figures["most calls for one run"] = max(len(c) for c in calls)
    for workflow_id, made in zip(ids, calls, strict=True):
        if len(made) > HTTP_MAX_ATTEMPTS:
            result.duplicated += len(made) - HTTP_MAX_ATTEMPTS
            result.problem(f"{workflow_id}: {len(made)} calls, the retry policy allows {HTTP_MAX_ATTEMPTS}")
        keys = set(made)
        if len(keys) != 1 or "" in keys:
            result.problem(f"{workflow_id}: Idempotency-Keys {sorted(keys)}, expected one")


# -- 2 ------------------------------------------------------------------------------------------


async def dispatcher_kill(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    ledger = Ledger()
    ids = ctx.ids("d2", sizes.dispatcher_runs)
    slots = asyncio.Semaphore(16)
    pressure = Pressure(ctx, "d2")

    async def one(workflow_id: str) -> None:
        async with slots:
            await ctx.start_acked(ledger, workflow_id, "drill_quick", {"n": 1})

    # Frozen while the commands pile up, so that when it thaws it takes a full batch at once; the parked
    # sync waiters come last, so they are still waiting when the kill comes.
    ctx.stack.pause_service("dispatcher", True)
    try:
        await asyncio.gather(*(one(w) for w in ids))
        await pressure.build(ledger)
    finally:
        pressure.thaw()
    # Kill once it started a quarter: the rest are fetched and in its hands, or queued. Its log is the
    # only sign of its progress (the runs announce themselves later, through the worker), so poll it.
    started_before = ctx.stack.log_count("dispatcher", "dispatch.started")

    async def quarter_started() -> bool:
        return ctx.stack.log_count("dispatcher", "dispatch.started") - started_before >= len(ids) // 4

    await wait_for(quarter_started, 60, "the dispatcher started a quarter of the runs", interval=0.02)
    await pressure.at_fault(result)
    ctx.stack.kill_service("dispatcher")
    info = await ctx.stack.js.consumer_info(subjects.COMMAND_STREAM, "dispatcher")
    result.figures["unacked commands at the kill"] = info.num_ack_pending
    result.figures["announced before the kill"] = ctx.log.count_started(ledger)
    duplicates_before = ctx.stack.log_count("dispatcher", "dispatch.duplicate_start")
    await ctx.stack.start_service("dispatcher")
    await pressure.finish(ledger, result)
    await check(ctx.stack, ctx.log, ledger, result, sizes.settle_s, ctx.receiver)
    result.figures["redelivered starts recognised"] = (
        ctx.stack.log_count("dispatcher", "dispatch.duplicate_start") - duplicates_before
    )


# -- 3 ------------------------------------------------------------------------------------------


async def notifier_kill(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    downstream, receiver = ctx.downstream, ctx.receiver
    ledger = Ledger()
    sync_ids = ctx.ids("d3s", sizes.sync_waiters)
    hook_ids = ctx.ids("d3w", sizes.webhook_runs)
    pressure = Pressure(ctx, "d3")
    receiver.delay_s = 0.5  # deliveries stay in flight long enough for the kill to hit some
    # Gathering every run at the downstream can take longer than an HTTP node's retries on a loaded
    # machine: no call is held past 4 s (under the node's 5 s timeout), so no run fails for that.
    downstream.max_hold_s, downstream.released_early = DOWNSTREAM_MAX_HOLD_S, 0
    downstream.hold()
    try:
        waiters = [
            asyncio.create_task(
                ctx.gateway_start(
                    {
                        "workflow": {"id": "drill_http"},
                        "workflowId": w,
                        "params": {"url": downstream.work_url(w)},
                        "syncTimeoutMs": 20000,
                    }
                )
            )
            for w in sync_ids
        ]
        hooks = await asyncio.gather(
            *(
                ctx.gateway_start(
                    {
                        "workflow": {"id": "drill_http"},
                        "workflowId": w,
                        "params": {"url": downstream.work_url(w)},
                        "callbackUrl": receiver.hook_url,
                    }
                )
                for w in hook_ids
            )
        )
        for w, answer in zip(hook_ids, hooks, strict=True):
            keep_answer(ledger, result, w, answer, callback=True)
        everyone = sync_ids + hook_ids
        if not await downstream.holds_within(lambda: all(downstream.calls.get(w) for w in everyone), 60):
            result.problem("not every run reached its HTTP call before the kill")
    finally:
        # Released at once: a call held longer than the node's retry budget (5 attempts of 5 s) fails its run.
        downstream.release()
    await pressure.build(ledger)
    # The runs now complete: kill the notifier once the first webhooks are on their way.
    await receiver.holds_within(lambda: receiver.arrived >= 1, 30)
    result.figures["webhooks in flight or done at the kill"] = receiver.arrived
    await pressure.at_fault(result)
    ctx.stack.kill_service("notifier")
    pressure.thaw()
    await ctx.stack.start_service("notifier")
    answers = await asyncio.gather(*waiters)
    codes = Counter(_answer(a) for a in answers)
    result.figures["sync answers"] = dict(sorted(codes.items()))
    for w, answer in zip(sync_ids, answers, strict=True):
        if isinstance(answer, httpx.Response) and answer.status_code in (200, 202):
            ledger.add(Acked(w))
        else:
            keep_answer(ledger, result, w, answer)
            result.problem(f"{w}: sync waiter answered {_answer(answer)}, expected 200 or 202")
    await pressure.finish(ledger, result)
    await check(ctx.stack, ctx.log, ledger, result, sizes.settle_s, receiver)
    receiver.delay_s = 0.0
    downstream.max_hold_s = None
    result.figures["downstream calls answered after 4 s held"] = downstream.released_early
    mine = [d for d in receiver.deliveries if any(f'"{w}"'.encode() in d.body for w in hook_ids)]
    result.figures["webhook deliveries"] = len(mine)


# -- 4 ------------------------------------------------------------------------------------------


class Load:
    """Steady start commands, straight to JetStream and through the gateway (async), until stopped.

    `concurrency` loops of each kind run at once, each paced at `interval_s`, so an outage meets many
    requests in flight. Every answer is kept: acknowledged, unclear (5xx, timeout, a publish that got
    no PubAck: its command may be stored) or refused (a 4xx, counted).
    """

    def __init__(self, ctx: Context, prefix: str, ledger: Ledger, interval_s: float = 0.2) -> None:
        self.ctx = ctx
        self.prefix = prefix
        self.ledger = ledger
        self.interval_s = interval_s
        self.refused: Counter[str] = Counter()
        self.sent = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._n = 0

    def start(self) -> None:
        loops = self.ctx.sizes.load_concurrency
        self._tasks = [asyncio.create_task(self._direct()) for _ in range(loops)]
        self._tasks += [asyncio.create_task(self._gateway()) for _ in range(loops)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def _next_id(self) -> str:
        self._n += 1
        return f"{self.prefix}-{self.ctx.tag}-{self._n}"

    async def _pace(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.interval_s)

    async def _direct(self) -> None:
        while not self._stop.is_set():
            workflow_id = self._next_id()
            self.sent += 1
            try:
                msg_id, _ = await self.ctx.publish_start(workflow_id, "drill_quick", {"n": 2}, timeout_s=2.0)
            except Exception as error:  # not acknowledged: it may or may not be stored; if stored, it runs once
                self.refused[f"publish {type(error).__name__}"] += 1
                self.ledger.add_unclear(workflow_id, f"publish {type(error).__name__}")
            else:
                self.ledger.add(Acked(workflow_id, command_id=msg_id))
            await self._pace()

    async def _gateway(self) -> None:
        while not self._stop.is_set():
            workflow_id = self._next_id()
            self.sent += 1
            body = {
                "workflow": {"id": "drill_quick"},
                "workflowId": workflow_id,
                "params": {"n": 3},
                "callbackUrl": self.ctx.receiver.hook_url,
            }
            answer = await self.ctx.gateway_start(body, timeout_s=15)
            if isinstance(answer, httpx.Response) and answer.status_code == 202:
                self.ledger.add(Acked(workflow_id, callback=True))
            else:
                self.refused[f"gateway {_answer(answer)}"] += 1
                if _unclear(answer):
                    self.ledger.add_unclear(workflow_id, f"gateway {_answer(answer)}")
            await self._pace()


async def _stored_sequences(stack: DrillStack, stream: str, first: int, last: int) -> list[int]:
    """The sequences in first..last that the stream no longer holds."""
    missing = []
    for seq in range(first, last + 1):
        try:
            await stack.js.get_msg(stream, seq)
        except Exception:
            missing.append(seq)
    return missing


async def nats_restart(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    ledger = Ledger()
    load = Load(ctx, "d4", ledger)
    pressure = Pressure(ctx, "d4")
    load.start()
    await ctx.log.wait_until(lambda: ctx.log.count_reached(ledger) >= 5, 30)
    await pressure.build(ledger)
    await pressure.at_fault(result)
    before = {name: await ctx.stack.js.stream_info(name) for name in (subjects.COMMAND_STREAM, subjects.EVENT_STREAM)}
    sent_before = load.sent
    ctx.stack.kill_server("nats")
    pressure.thaw()
    await asyncio.sleep(sizes.nats_outage_s)  # the outage itself: nothing to await but time
    result.figures["requests sent during the outage"] = load.sent - sent_before
    await ctx.stack.start_server("nats")
    await ctx.stack.wait_healthy(60)
    await asyncio.sleep(LOAD_AFTER_RECOVERY_S)  # load goes on against the restarted server for a while
    await load.stop()
    # Every sequence stored before the kill, one by one: a count could hide a loss behind a new message.
    for name, info in before.items():
        state = info.state
        missing = await _stored_sequences(ctx.stack, name, state.first_seq, state.last_seq)
        result.figures[f"{name} sequences checked after the restart"] = f"{state.first_seq}..{state.last_seq}"
        gone = len(missing) - int(state.num_deleted or 0)
        if gone > 0:
            result.lost += gone
            result.problem(
                f"{name}: {len(missing)} sequences up to {state.last_seq} gone after the restart: {missing[:10]}"
            )
    await pressure.finish(ledger, result)
    result.figures["refused (not acknowledged)"] = dict(load.refused)
    await check(ctx.stack, ctx.log, ledger, result, sizes.settle_s, ctx.receiver)


# -- 5 ------------------------------------------------------------------------------------------


async def redis_crash(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    ledger = Ledger()
    stack = ctx.stack
    pressure = Pressure(ctx, "d5")
    await pressure.crash(ledger, result, "redis")
    answers: Counter[str] = Counter()
    five = 0
    try:
        sync_ids = ctx.ids("d5", sizes.redis_calls)
        sync_answers = await ctx.sync_starts("drill_quick", sync_ids, {"n": 5}, 5000)
        for workflow_id, answer in zip(sync_ids, sync_answers, strict=True):
            answers[f"start {_answer(answer)}"] += 1
            keep_answer(ledger, result, workflow_id, answer)
            if _unclear(answer):
                five += 1
                result.problem(f"{workflow_id}: sync start answered {_answer(answer)} while Redis is down")
            got = await stack.http.get(f"/v3/workflow/{workflow_id}")
            answers[f"get {got.status_code}"] += 1
            if got.status_code >= 500:
                five += 1
                result.problem(f"{workflow_id}: GET answered {got.status_code} while Redis is down")
        direct = ctx.ids("d5j", sizes.redis_calls)
        for workflow_id in direct:
            await ctx.start_acked(ledger, workflow_id, "drill_quick", {"n": 6})
        # Definitions load with the cache down: the API, and the dispatcher pinning the direct starts.
        assert stack.dsl is not None
        for _ in range(3):
            definition = await stack.dsl.get("/workflowDefinition/drill_quick", params={"version": "ACTIVE"})
            answers[f"definition {definition.status_code}"] += 1
            if definition.status_code != 200:
                result.problem(f"definition load answered {definition.status_code} while Redis is down")
            five += definition.status_code >= 500
        await ctx.log.wait_until(lambda: all(ctx.log.reached(w, WorkflowStatus.COMPLETED) for w in direct), 30)
        result.figures["ran with Redis down (direct starts)"] = sum(
            ctx.log.reached(w, WorkflowStatus.COMPLETED) for w in direct
        )
        for workflow_id in direct:  # these runs exist: their state comes from Temporal
            got = await stack.http.get(f"/v3/workflow/{workflow_id}")
            answers[f"get of a direct start {got.status_code}"] += 1
            if got.status_code != 200:
                five += got.status_code >= 500
                result.problem(f"{workflow_id}: GET answered {got.status_code} while Redis is down")
        result.figures["answers while Redis was down"] = dict(sorted(answers.items()))
        result.figures["5xx answers while Redis was down"] = five
    finally:
        await stack.start_server("redis")
    # Back: the services' pooled connections to the old Redis are dead; no answer may be a 5xx for it.
    await stack.wait_healthy(60)
    after: Counter[str] = Counter()
    # At once, so that the gateway reaches for several pooled connections, not one.
    after_ids = ctx.ids("d5a", sizes.redis_calls)
    after_answers = await ctx.sync_starts("drill_quick", after_ids, {"n": 4}, 10000)
    for workflow_id, answer in zip(after_ids, after_answers, strict=True):
        after[_answer(answer)] += 1
        keep_answer(ledger, result, workflow_id, answer)
        if _unclear(answer):
            result.problem(f"{workflow_id}: sync start answered {_answer(answer)} after Redis returned")
    result.figures["sync answers after Redis returned"] = dict(sorted(after.items()))
    await pressure.finish(ledger, result)
    await check(stack, ctx.log, ledger, result, sizes.settle_s, ctx.receiver)


# -- 6 ------------------------------------------------------------------------------------------


async def temporal_crash(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    ledger = Ledger()
    stack = ctx.stack
    pressure = Pressure(ctx, "d6")
    await pressure.crash(ledger, result, "temporal")
    stopped = time.monotonic()
    load = Load(ctx, "d6", ledger)
    load.start()
    sync_ids = ctx.ids("d6s", 3)
    sync = [
        asyncio.create_task(
            ctx.gateway_start(
                {"workflow": {"id": "drill_quick"}, "workflowId": w, "params": {"n": 7}, "syncTimeoutMs": 3000}
            )
        )
        for w in sync_ids
    ]
    await asyncio.sleep(max(0.0, sizes.temporal_outage_s - (time.monotonic() - stopped)))  # the outage itself
    await load.stop()
    answers = await asyncio.gather(*sync)
    result.figures["sync answers during the outage"] = dict(Counter(_answer(a) for a in answers))
    for w, answer in zip(sync_ids, answers, strict=True):
        keep_answer(ledger, result, w, answer)
    result.figures["requests sent during the outage"] = load.sent
    result.figures["accepted during the outage"] = len(ledger)
    result.figures["refused during the outage"] = dict(load.refused)
    await stack.start_server("temporal")
    result.figures["outage (s)"] = round(time.monotonic() - stopped, 1)
    back = time.monotonic()
    await pressure.finish(ledger, result)
    await check(stack, ctx.log, ledger, result, sizes.settle_s, ctx.receiver)
    result.figures["all accepted runs done after return (s)"] = round(time.monotonic() - back, 1)


# -- 7 ------------------------------------------------------------------------------------------


async def ambiguous_start(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    stack = ctx.stack
    assert stack.proxy is not None
    ledger = Ledger()
    pressure = Pressure(ctx, "d7")
    # a) The dispatcher started the runs, its record of having done so (its partitions' saved floors) is
    # lost: it is killed, and whoever reads its partitions next reads those commands again.
    await wait_for(lambda: consumers_drained(stack), 60, "commands drained before drill 7")
    rule = stack.proxy.drop_publishes(f"$KV.{FLOORS_BUCKET}.")
    duplicates_before = stack.log_count("dispatcher", "dispatch.duplicate_start")
    ids = ctx.ids("d7", sizes.ambiguous)
    for i, workflow_id in enumerate(ids):
        # Half stay WAITING (the second reading meets a running run), half complete at once (a closed one).
        waiting = i % 2 == 0
        definition, params = ("hello_approval", {"name": "Ada"}) if waiting else ("drill_quick", {"n": 8})
        msg_id, _ = await ctx.publish_start(workflow_id, definition, params)
        ledger.add(
            Acked(workflow_id, WorkflowStatus.WAITING if waiting else WorkflowStatus.COMPLETED, command_id=msg_id)
        )

    async def all_started() -> bool:
        return all([(await temporal_runs(stack, w)).executions for w in ids])

    await wait_for(all_started, 60, "every ambiguous start reached Temporal")

    async def floor_save_lost() -> bool:
        return rule.dropped > 0

    # The dispatcher saves floors once a second: the kill must come after it tried (and failed) to record them.
    await wait_for(floor_save_lost, 30, "the dispatcher tried to save a floor after the starts")
    # Work in flight at the kill too: the dispatcher frozen while sync starts and commands pile up.
    await pressure.build(ledger)
    await pressure.at_fault(result)
    pressure.thaw()
    stack.kill_service("dispatcher")
    stack.proxy.rule = None
    result.figures["saved floors lost"] = rule.dropped
    if rule.dropped == 0:
        result.problem("no saved floor was lost: the starts were not left ambiguous")
    await stack.start_service("dispatcher")
    # b) The publisher's ack is lost: it publishes again with the same Nats-Msg-Id; JetStream drops it.
    republished = 0
    for workflow_id in ctx.ids("d7p", max(2, sizes.ambiguous // 2)):
        msg_id, _ = await ctx.publish_start(workflow_id, "drill_quick", {"n": 9})
        _, again = await ctx.publish_start(workflow_id, "drill_quick", {"n": 9}, msg_id=msg_id)
        republished += 1
        if not again.duplicate:
            result.problem(f"{workflow_id}: a re-publish with the same Nats-Msg-Id was stored twice")
        ledger.add(Acked(workflow_id, command_id=msg_id))
    await pressure.finish(ledger, result)
    await check(stack, ctx.log, ledger, result, sizes.settle_s, ctx.receiver)
    recognised = stack.log_count("dispatcher", "dispatch.duplicate_start") - duplicates_before
    result.figures["starts read again and recognised"] = recognised
    result.figures["publisher retries deduplicated"] = republished
    if recognised < len(ids):
        result.problem(f"only {recognised} of the {len(ids)} ambiguous starts were read again and recognised")
    await _terminated_promptly(ctx, result, [w for i, w in enumerate(ids) if i % 2 == 0])


TERMINATED_STORED_WITHIN_S = 5.0


async def _terminated_promptly(ctx: Context, result: Result, workflow_ids: list[str]) -> None:
    """Terminate WAITING runs: TERMINATED must reach Temporal and the run-context store within seconds."""
    slowest = 0.0
    for workflow_id in workflow_ids:
        ended = await ctx.stack.http.delete(f"/v3/workflow/terminate/{workflow_id}")
        began = time.monotonic()
        if ended.status_code != 200:
            result.problem(f"{workflow_id}: terminate answered {ended.status_code}")
            continue
        # The store's write has no event to await: polled, with a deadline.
        while True:
            stored = await stored_context(ctx.stack, workflow_id)
            if stored is not None and stored.get("workflowStatus") == WorkflowStatus.TERMINATED.value:
                if not (stored.get("context") or {}).get("greet"):
                    result.problem(f"{workflow_id}: the TERMINATED run context lost the run's last context")
                break
            if time.monotonic() - began > TERMINATED_STORED_WITHIN_S:
                result.problem(
                    f"{workflow_id}: no TERMINATED run context {TERMINATED_STORED_WITHIN_S:.0f} s after the "
                    f"terminate (store: {stored and stored.get('workflowStatus')})"
                )
                break
            await asyncio.sleep(0.05)
        slowest = max(slowest, time.monotonic() - began)
        temporal = await temporal_runs(ctx.stack, workflow_id)
        if temporal.status != "TERMINATED":
            result.problem(f"{workflow_id}: Temporal says {temporal.status} after the terminate answered 200")
    result.figures["TERMINATED run contexts stored, slowest after the terminate (s)"] = (
        f"{len(workflow_ids)}, {slowest:.2f}"
    )


# -- 8 ------------------------------------------------------------------------------------------


async def webhook_order(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    receiver = ctx.receiver
    ledger = Ledger()
    ids = ctx.ids("d8", sizes.order_runs)
    # The receiver refuses each run's WAITING webhook twice: its retries (backoff about 1 s, then 2 s)
    # arrive after the COMPLETED one that the resume causes at once.
    for w in ids:
        receiver.refuse[(w, WorkflowStatus.WAITING.value)] = 2
    starts = await asyncio.gather(
        *(
            ctx.gateway_start(
                {
                    "workflow": {"id": "hello_approval"},
                    "workflowId": w,
                    "params": {"name": "Ada"},
                    "callbackUrl": receiver.hook_url,
                }
            )
            for w in ids
        )
    )
    for w, answer in zip(ids, starts, strict=True):
        if not (isinstance(answer, httpx.Response) and answer.status_code == 202):
            result.problem(f"{w}: async start answered {_answer(answer)}")
    await ctx.log.wait_until(lambda: all(ctx.log.reached(w, WorkflowStatus.WAITING) for w in ids), 60)
    for w in ids:
        resumed = await ctx.stack.http.put(
            f"/v3/workflow/resume/{w}",
            json={"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}},
        )
        if resumed.status_code != 200:
            result.problem(f"{w}: resume answered {resumed.status_code}")
        ledger.add(Acked(w, callback=True))
    await check(ctx.stack, ctx.log, ledger, result, sizes.settle_s, receiver)
    mine = {w: [d for d in receiver.deliveries if json.loads(d.body)["workflowId"] == w] for w in ids}
    inverted = 0
    for w, deliveries in mine.items():
        arrived = [json.loads(d.body)["workflowStatus"] for d in deliveries]
        if not {WorkflowStatus.COMPLETED.value, WorkflowStatus.WAITING.value} <= set(arrived):
            result.problem(f"{w}: delivered {arrived}, expected WAITING and COMPLETED")
            continue
        if arrived.index(WorkflowStatus.COMPLETED.value) < arrived.index(WorkflowStatus.WAITING.value):
            inverted += 1
        for d in deliveries:
            signed = d.webhook_id.rsplit(":s", 1)[-1]
            if not d.seq.isdigit() or d.seq != signed:
                result.problem(f"{w}: webhook-seq {d.seq!r} does not match the signed webhook-id {d.webhook_id}")
        # What a receiver following the docs keeps: the state with the highest webhook-seq.
        by_seq = max(deliveries, key=lambda d: int(d.seq) if d.seq.isdigit() else -1)
        final = json.loads(by_seq.body)["workflowStatus"]
        if final != WorkflowStatus.COMPLETED.value:
            result.problem(f"{w}: ordering by webhook-seq ends at {final}, the run ended COMPLETED")
        chain = {run_chain(e) for e in ctx.log.events.get(w, [])}
        if len(chain) != 1:
            result.problem(f"{w}: {len(chain)} event chains")
    result.figures["runs whose WAITING webhook arrived after COMPLETED"] = f"{inverted} of {len(ids)}"
    result.figures["attempts refused by the receiver"] = receiver.refused
    if inverted == 0:
        result.problem("no webhook arrived out of order: the drill did not exercise ordering")
    receiver.refuse.clear()


# -- 9 ------------------------------------------------------------------------------------------

OUTCOMES = frozenset(
    {
        "dispatch.started",
        "dispatch.duplicate_start",
        "dispatch.updated",
        "dispatch.terminated",
        "dispatch.command_rejected",
        "dispatch.duplicate_command",
    }
)
"""The dispatcher's log events that end a command's application (each names its `command_id`)."""


def first_outcomes(paths: list[Path]) -> dict[str, str]:
    """command_id -> the ISO time of the first line, in any of the dispatchers' logs, that ended it."""
    first: dict[str, str] = {}
    for path in paths:
        with contextlib.suppress(OSError), path.open(errors="replace") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut by the kill
                command_id, at = entry.get("command_id"), entry.get("timestamp")
                if entry.get("event") in OUTCOMES and isinstance(command_id, str) and isinstance(at, str):
                    first[command_id] = min(first.get(command_id, at), at)
    return first


async def dispatcher_order(ctx: Context, result: Result) -> None:
    stack = ctx.stack
    # Three dispatchers: the platform's and two more; each reads its share of the command partitions.
    extra = [await stack.extra_dispatcher(f"dispatcher-{n}") for n in (2, 3)]
    try:
        await _three_dispatchers(ctx, result, extra)
    finally:
        # Off the event loop: stopping, a dispatcher hands its partitions over to the platform's, whose NATS
        # traffic passes the drills' proxy on this loop.
        await asyncio.gather(*(asyncio.to_thread(process.stop, 10) for process in extra))


async def _three_dispatchers(ctx: Context, result: Result, extra: list[ManagedProcess]) -> None:
    stack = ctx.stack
    ledger = Ledger()
    runs = ctx.ids("d9", ctx.sizes.command_order_runs)
    victim = extra[1]
    await stack.wait_healthy(60)
    logs = [stack.service("dispatcher").process.log_path] + [p.log_path for p in extra]
    result.figures["dispatchers"] = 1 + len(extra)
    # Each run: start (drill_hold waits for an event no one sends), resume (no input is awaited: CONFLICT),
    # event `late` (not awaited: CONFLICT), terminate. Any of them applied before the start is NOT_FOUND,
    # the terminate never fails in order; the dispatchers' logs show when each command was applied.
    plans = {
        w: [
            ("start", {"workflow": {"id": "drill_hold"}, "workflowId": w}),
            ("resume", {"workflowId": w, "viewResponse": {"selectedOptions": {}}}),
            ("event", {"workflowId": w, "event": "late"}),
            ("terminate", {"workflowId": w, "reason": "in order"}),
        ]
        for w in runs
    }
    order: dict[str, list[str]] = {w: [] for w in runs}
    rng = random.Random(ctx.tag)
    total = 4 * len(runs)
    for sent in range(total):
        workflow_id = rng.choice([w for w in runs if plans[w]])
        kind, body = plans[workflow_id].pop(0)
        msg_id = uuid.uuid4().hex
        headers = {"Nats-Msg-Id": msg_id, subjects.WORKFLOW_ID_HEADER: workflow_id}
        await stack.js.publish(subjects.command(TENANT, kind), msgspec.json.encode(body), headers=headers)
        order[workflow_id].append(msg_id)
        if kind == "start":
            ledger.add(Acked(workflow_id, WorkflowStatus.TERMINATED, command_id=msg_id))
        if sent == total // 2:
            # Midway, once it has applied some: kill -9 one of the three, never restarted.
            await wait_for(
                lambda: _applied_some(victim.log_path), 60, "the doomed dispatcher applied a command", interval=0.05
            )
            result.figures["commands not yet done at the kill"] = await commands_unacknowledged(stack)
            applied_before = sum(log_count(victim.log_path, e) for e in OUTCOMES)
            result.figures["commands the killed dispatcher had applied"] = applied_before
            assert victim.pid is not None
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait_stopped(time.monotonic() + 10)
            if not result.figures["commands not yet done at the kill"]:
                result.problem("no command was pending at the kill")
    await check(stack, ctx.log, ledger, result, ctx.sizes.settle_s, ctx.receiver)
    first = first_outcomes(logs)
    unordered = missing = 0
    for workflow_id, sent_ids in order.items():
        if any(c not in first for c in sent_ids):
            missing += 1
            result.lost += 1
            result.problem(f"{workflow_id}: commands never applied {[c for c in sent_ids if c not in first]}")
            continue
        applied = sorted(sent_ids, key=lambda c: first[c])
        if applied != sent_ids:
            unordered += 1
            result.problem(f"{workflow_id}: applied in the order {applied}, published {sent_ids}")
        rejected = {
            e.event_id: e for e in ctx.log.events.get(workflow_id, []) if e.workflow_status == WorkflowStatus.REJECTED
        }
        codes = sorted(str(e.error_code) for e in rejected.values())
        if codes != ["CONFLICT", "CONFLICT"]:
            result.problem(f"{workflow_id}: rejections {codes}, in order the resume and the event are CONFLICT")
    result.figures["runs applied out of order"] = unordered
    result.figures["runs with a command never applied"] = missing
    result.figures["commands"] = total


async def _applied_some(path: Path) -> bool:
    return any(log_count(path, event) for event in OUTCOMES)


DRILLS = [
    Drill(
        "worker-kill",
        "kill -9 a worker during an HTTP node",
        "Runs of `drill_http` (one HTTP node, `retry.maxAttempts` 5, `timeoutMs` 5000) call the loopback "
        "downstream, which holds every call open; once every run is mid-request, sync starts are parked in "
        "the gateway and start commands queued behind a frozen dispatcher, the worker's process group "
        "gets SIGKILL, the downstream is released and the worker restarted on the same ports.",
        "Every run COMPLETED exactly once (Temporal, run-context store, events); the downstream saw at most 5 "
        "calls per run (the retry policy) and all calls of one run carried the same `Idempotency-Key`.",
        worker_kill,
    ),
    Drill(
        "dispatcher-kill",
        "kill -9 the dispatcher with commands in flight",
        "The dispatcher is frozen (SIGSTOP) while start commands of `drill_quick` are published straight to "
        "JetStream and sync starts go through the gateway, then thawed; as soon as its log shows a quarter "
        "of the runs started it gets SIGKILL with commands fetched but unacknowledged (some already started "
        "on Temporal), and is restarted. Unacknowledged commands come back after the consumer's 30 s ack wait.",
        "Every command JetStream acknowledged has exactly one Temporal execution, started by that command "
        "(memo `commandId`), one event chain, a COMPLETED status in Temporal and in the run-context store, "
        "and status events seq 1..n; the drill waits until no command is pending or unacknowledged.",
        dispatcher_kill,
    ),
    Drill(
        "notifier-kill",
        "kill -9 the notifier while sync waiters and webhooks are pending",
        "Sync starts (`syncTimeoutMs` 20000) and async starts with a `callbackUrl` of `drill_http`, held at "
        "the downstream; then the downstream is released, and once the first webhook reaches the (slow, "
        "0.5 s) receiver the notifier gets SIGKILL and is restarted.",
        "Every sync waiter answered 200 or 202; every async run's COMPLETED webhook was delivered with a "
        "valid Standard Webhooks signature; every (run, status) delivered more than once is counted (the "
        "same `webhook-id` again: a re-delivery; another id: a duplicate); every run completed exactly once "
        "and its context reached the run-context store.",
        notifier_kill,
    ),
    Drill(
        "nats-restart",
        "kill -9 NATS (file store) and restart it",
        "Steady concurrent load (start commands straight to JetStream and async starts through the gateway); "
        "NATS gets SIGKILL, stays down (5 s; smoke 2 s), and is started again on the same port and "
        "data directory; the load goes on for 3 s after it is back.",
        "Every command whose publish was acknowledged (PubAck, or the gateway's 202) ran exactly once to "
        "COMPLETED with complete status events and its webhook; every sequence of both streams stored "
        "before the kill is still there, one by one; a publish without PubAck, a 5xx or a timeout ran "
        "exactly once or never.",
        nats_restart,
    ),
    Drill(
        "redis-crash",
        "kill -9 Redis",
        "The Redis server process gets SIGKILL; sync starts (`syncTimeoutMs` 5000, at once) and GETs go "
        "through the gateway, definitions are read from the dsl-store, and start commands go straight to "
        "JetStream; then Redis is started again (empty: it keeps no data).",
        "No answer is a 5xx: sync starts answer 200 (from Temporal state) or 202; definitions load (200); "
        "the direct starts run while Redis is down; once Redis is back (and every service ready), sync starts "
        "answer 200 or 202, not 5xx; every acknowledged command ran exactly once.",
        redis_crash,
    ),
    Drill(
        "temporal-crash",
        "kill -9 Temporal under load",
        "The Temporal server process (dev server, SQLite file) gets SIGKILL and stays down for the outage "
        "(30 s; smoke 8 s) while concurrent load runs: start commands straight to JetStream, async starts "
        "through the gateway, three sync starts; then Temporal is started again on the same port and database.",
        "Every command accepted during the outage (PubAck or 202) ran exactly once to COMPLETED after "
        "Temporal returned, with its webhook delivered; every 5xx or timeout ran exactly once or never.",
        temporal_crash,
    ),
    Drill(
        "ambiguous-start",
        "ambiguous outcome: the start reached Temporal, the ack was lost",
        "The dispatcher reaches NATS through a loopback proxy that loses the first `+ACK` of chosen start "
        "commands (full run: dropped, redelivered after the 30 s ack wait; smoke: turned into `-NAK`, "
        "redelivered at once). Half of them start `hello_approval` (the redelivery meets a WAITING run), "
        "half `drill_quick` (it meets a COMPLETED one). Also: a publisher re-sends with the same "
        "`Nats-Msg-Id` after losing its PubAck.",
        "Each command has one Temporal execution and one event chain, started by that command (memo "
        "`commandId`, which must be present); the redelivered starts were recognised; the re-publish was "
        "deduplicated. Then the WAITING runs are terminated: TERMINATED must reach Temporal and the run-context "
        "store (with the run's last context) within 5 s of each terminate's answer.",
        ambiguous_start,
    ),
    Drill(
        "webhook-order",
        "a run's webhooks arrive out of order",
        "Async runs of `hello_approval` (WAITING, then resumed to COMPLETED); the receiver answers 503 to "
        "each run's first two WAITING deliveries, so the retried WAITING arrives after COMPLETED.",
        "Out-of-order arrival happened (else the drill fails: it did not exercise ordering); every "
        "webhook's `webhook-seq` header equals the seq in its signed `webhook-id`; ordering each run's "
        "webhooks by `webhook-seq`, as receivers must, ends at COMPLETED for every run.",
        webhook_order,
    ),
    Drill(
        "dispatcher-order",
        "three dispatchers, one killed: each run's commands apply in order",
        "Two more dispatcher processes join the platform's (the command partitions spread over the three); "
        "start, resume, event and terminate commands of many `drill_hold` runs are published straight to "
        "JetStream, interleaved across runs; midway, once it has applied some, one of the three gets SIGKILL "
        "and is never restarted (its partitions are taken over when its leases expire).",
        "Every run TERMINATED exactly once (Temporal, run-context store, events) from the start that was "
        "published for it; each command was applied (a line of one of the dispatchers' logs names it) and each "
        "run's commands were first applied in the order they were published; the resume and the event were "
        "refused CONFLICT (a running run refuses them), never NOT_FOUND (applied before the start).",
        dispatcher_order,
    ),
]
