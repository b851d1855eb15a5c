"""The seven fault drills: each drives load, injects one fault, recovers, and counts what was acknowledged.

Every drill returns a `Result`; `checks.check` turns its ledger of acknowledged
commands into lost / duplicated / stuck counts, and each drill adds the checks of
its own fault (calls the downstream saw, webhooks delivered, answers of sync
waiters) as further problems.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
from nats.js.api import PubAck

from drift_schema import subjects
from drift_schema.api import WorkflowRef
from drift_schema.commands import StartCommand
from drift_schema.statuses import WorkflowStatus
from drills.checks import Acked, EventLog, Ledger, Result, check, consumers_drained, quiesce
from drills.loopback import Downstream, WebhookReceiver
from drills.stack import DrillStack, wait_for

HTTP_MAX_ATTEMPTS = 5
"""`retry.maxAttempts` of `drill_call` in bundle.json: the most calls one run may make."""
ACK_WAIT_S = 30.0
LOAD_AFTER_RECOVERY_S = 3.0
"""The consumers' ack wait (drift_runtime.messaging.ConsumerSpec): when unacked messages come back."""


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
    lose_ack_by_nak: bool
    """True: a lost ack becomes an immediate NAK (same redelivery, without the 30 s ack wait)."""
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
    lose_ack_by_nak=False,
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
    lose_ack_by_nak=True,
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

    async def recover(self) -> None:
        """After a drill: every service ready again and nothing left pending, so drills do not bleed."""
        await self.stack.wait_healthy(120)
        await quiesce(self.stack, 120)


def _answer(response: httpx.Response | Exception) -> str:
    return str(response.status_code) if isinstance(response, httpx.Response) else type(response).__name__


# -- 1 ------------------------------------------------------------------------------------------


async def worker_kill(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    downstream = ctx.downstream
    ledger = Ledger()
    ids = ctx.ids("d1", sizes.http_runs)
    downstream.hold()
    try:
        for workflow_id in ids:
            await ctx.start_acked(ledger, workflow_id, "drill_http", {"url": downstream.work_url(workflow_id)})
        if not await downstream.holds_within(lambda: all(downstream.calls.get(w) for w in ids), 60):
            result.problem("not every run reached its HTTP call before the kill")
        result.figures["calls in flight at the kill"] = downstream.in_flight
        ctx.stack.kill_service("worker-1")
    finally:
        downstream.release()
    await ctx.stack.start_service("worker-1")
    await check(ctx.stack, ctx.log, ledger, result, sizes.settle_s)
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

    async def one(workflow_id: str) -> None:
        async with slots:
            await ctx.start_acked(ledger, workflow_id, "drill_quick", {"n": 1})

    # Frozen while the commands pile up, so that when it thaws it takes a full batch at once.
    ctx.stack.pause_service("dispatcher", True)
    try:
        await asyncio.gather(*(one(w) for w in ids))
    finally:
        ctx.stack.pause_service("dispatcher", False)
    # Kill once it started a quarter: the rest are fetched and in its hands, or queued. Its log is the
    # only sign of its progress (the runs announce themselves later, through the worker), so poll it.
    started_before = ctx.stack.log_count("dispatcher", "dispatch.started")

    async def quarter_started() -> bool:
        return ctx.stack.log_count("dispatcher", "dispatch.started") - started_before >= len(ids) // 4

    await wait_for(quarter_started, 60, "the dispatcher started a quarter of the runs", interval=0.02)
    ctx.stack.kill_service("dispatcher")
    info = await ctx.stack.js.consumer_info(subjects.COMMAND_STREAM, "dispatcher")
    result.figures["unacked commands at the kill"] = info.num_ack_pending
    result.figures["announced before the kill"] = ctx.log.count_started(ledger)
    duplicates_before = ctx.stack.log_count("dispatcher", "dispatch.duplicate_start")
    await ctx.stack.start_service("dispatcher")
    await check(ctx.stack, ctx.log, ledger, result, sizes.settle_s)
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
    receiver.delay_s = 0.5  # deliveries stay in flight long enough for the kill to hit some
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
        for w in hook_ids:
            answer = await ctx.gateway_start(
                {
                    "workflow": {"id": "drill_http"},
                    "workflowId": w,
                    "params": {"url": downstream.work_url(w)},
                    "callbackUrl": receiver.hook_url,
                }
            )
            if isinstance(answer, httpx.Response) and answer.status_code == 202:
                ledger.add(Acked(w, callback=True))
            else:
                result.problem(f"{w}: async start answered {_answer(answer)}, expected 202")
        everyone = sync_ids + hook_ids
        if not await downstream.holds_within(lambda: all(downstream.calls.get(w) for w in everyone), 60):
            result.problem("not every run reached its HTTP call before the kill")
    finally:
        downstream.release()
    # The runs now complete: kill the notifier once the first webhooks are on their way.
    await receiver.holds_within(lambda: receiver.arrived >= 1, 30)
    result.figures["webhooks in flight or done at the kill"] = receiver.arrived
    ctx.stack.kill_service("notifier")
    await ctx.stack.start_service("notifier")
    answers = await asyncio.gather(*waiters)
    codes = Counter(_answer(a) for a in answers)
    result.figures["sync answers"] = dict(sorted(codes.items()))
    for w, answer in zip(sync_ids, answers, strict=True):
        if isinstance(answer, httpx.Response) and answer.status_code in (200, 202):
            ledger.add(Acked(w))
        else:
            result.problem(f"{w}: sync waiter answered {_answer(answer)}, expected 200 or 202")
    await check(ctx.stack, ctx.log, ledger, result, sizes.settle_s)
    receiver.delay_s = 0.0
    delivered = receiver.statuses()
    for w in hook_ids:
        if WorkflowStatus.COMPLETED.value not in delivered.get(w, set()):
            result.lost += 1
            result.problem(f"{w}: no COMPLETED webhook delivered")
    reused = receiver.reused_ids()
    if reused:
        result.duplicated += reused
        result.problem(f"{reused} webhook-ids delivered for two different events")
    mine = [d for d in receiver.deliveries if any(f'"{w}"'.encode() in d.body for w in hook_ids)]
    result.figures["webhook deliveries"] = len(mine)
    result.figures["same webhook-id delivered again"] = len(mine) - len({d.webhook_id for d in mine})
    if any(not d.valid_signature for d in mine):
        result.problem("a webhook with an invalid signature")


# -- 4 ------------------------------------------------------------------------------------------


class Load:
    """Steady start commands, straight to JetStream and through the gateway (async), until stopped."""

    def __init__(self, ctx: Context, prefix: str, ledger: Ledger, interval_s: float = 0.2) -> None:
        self.ctx = ctx
        self.prefix = prefix
        self.ledger = ledger
        self.interval_s = interval_s
        self.refused: Counter[str] = Counter()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._n = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._direct()), asyncio.create_task(self._gateway())]

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
            try:
                msg_id, _ = await self.ctx.publish_start(workflow_id, "drill_quick", {"n": 2}, timeout_s=2.0)
            except Exception as error:  # not acknowledged: it may or may not be stored, it need not run
                self.refused[f"publish {type(error).__name__}"] += 1
            else:
                self.ledger.add(Acked(workflow_id, command_id=msg_id))
            await self._pace()

    async def _gateway(self) -> None:
        while not self._stop.is_set():
            workflow_id = self._next_id()
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
            await self._pace()


async def _webhooks_delivered(ctx: Context, ledger: Ledger, result: Result) -> None:
    delivered = ctx.receiver.statuses()
    for command in ledger.acked:
        if command.callback and command.expect.value not in delivered.get(command.workflow_id, set()):
            result.lost += 1
            result.problem(f"{command.workflow_id}: no {command.expect.value} webhook delivered")


async def nats_restart(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    ledger = Ledger()
    load = Load(ctx, "d4", ledger)
    load.start()
    await ctx.log.wait_until(lambda: ctx.log.count_reached(ledger) >= 5, 30)
    before = await ctx.stack.js.stream_info(subjects.EVENT_STREAM)
    ctx.stack.kill_server("nats")
    await asyncio.sleep(sizes.nats_outage_s)  # the outage itself: nothing to await but time
    await ctx.stack.start_server("nats")
    await ctx.stack.wait_healthy(60)
    after = await ctx.stack.js.stream_info(subjects.EVENT_STREAM)
    await asyncio.sleep(LOAD_AFTER_RECOVERY_S)  # load goes on against the restarted server for a while
    await load.stop()
    result.figures["refused during the outage (not acknowledged)"] = dict(load.refused)
    result.figures["stored events before kill / after restart"] = f"{before.state.messages} / {after.state.messages}"
    if after.state.messages < before.state.messages:
        result.lost += before.state.messages - after.state.messages
        result.problem("the event stream lost messages across the restart")
    await check(ctx.stack, ctx.log, ledger, result, sizes.settle_s)
    await _webhooks_delivered(ctx, ledger, result)


# -- 5 ------------------------------------------------------------------------------------------


async def redis_stop(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    ledger = Ledger()
    stack = ctx.stack
    ctx.stack.stop_server("redis")
    try:
        answers: Counter[str] = Counter()
        five = 0
        for workflow_id in ctx.ids("d5", sizes.redis_calls):
            answer = await ctx.gateway_start(
                {
                    "workflow": {"id": "drill_quick"},
                    "workflowId": workflow_id,
                    "params": {"n": 5},
                    "syncTimeoutMs": 5000,
                }
            )
            answers[f"start {_answer(answer)}"] += 1
            if isinstance(answer, httpx.Response) and answer.status_code in (200, 202):
                ledger.add(Acked(workflow_id))
            elif not isinstance(answer, httpx.Response) or answer.status_code >= 500:
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
    after_answers = await asyncio.gather(
        *(
            ctx.gateway_start(
                {"workflow": {"id": "drill_quick"}, "workflowId": w, "params": {"n": 4}, "syncTimeoutMs": 10000}
            )
            for w in after_ids
        )
    )
    for workflow_id, answer in zip(after_ids, after_answers, strict=True):
        after[_answer(answer)] += 1
        if isinstance(answer, httpx.Response) and answer.status_code in (200, 202):
            ledger.add(Acked(workflow_id))
        else:
            result.problem(f"{workflow_id}: sync start answered {_answer(answer)} after Redis returned")
    result.figures["sync answers after Redis returned"] = dict(sorted(after.items()))
    await check(stack, ctx.log, ledger, result, sizes.settle_s)


# -- 6 ------------------------------------------------------------------------------------------


async def temporal_stop(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    ledger = Ledger()
    stack = ctx.stack
    stack.stop_server("temporal")
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
        if isinstance(answer, httpx.Response) and answer.status_code in (200, 202):
            ledger.add(Acked(w))
    result.figures["accepted during the outage"] = len(ledger)
    result.figures["refused during the outage"] = dict(load.refused)
    await stack.start_server("temporal")
    result.figures["outage (s)"] = round(time.monotonic() - stopped, 1)
    back = time.monotonic()
    await check(stack, ctx.log, ledger, result, sizes.settle_s)
    result.figures["all accepted runs done after return (s)"] = round(time.monotonic() - back, 1)
    await _webhooks_delivered(ctx, ledger, result)


# -- 7 ------------------------------------------------------------------------------------------


async def ambiguous_start(ctx: Context, result: Result) -> None:
    sizes = ctx.sizes
    stack = ctx.stack
    assert stack.proxy is not None
    ledger = Ledger()
    # a) The dispatcher started the run, its ack to JetStream is lost: the command comes back.
    await wait_for(lambda: consumers_drained(stack), 60, "commands drained before drill 7")
    info = await stack.js.stream_info(subjects.COMMAND_STREAM)
    first = info.state.last_seq + 1
    sequences = set(range(first, first + sizes.ambiguous))
    rule = stack.proxy.lose_first_acks(subjects.COMMAND_STREAM, "dispatcher", sequences, nak=sizes.lose_ack_by_nak)
    duplicates_before = stack.log_count("dispatcher", "dispatch.duplicate_start")
    ids = ctx.ids("d7", sizes.ambiguous)
    for i, workflow_id in enumerate(ids):
        # Half stay WAITING (the redelivery meets a running run), half complete at once (it meets a closed one).
        waiting = i % 2 == 0
        definition, params = ("hello_approval", {"name": "Ada"}) if waiting else ("drill_quick", {"n": 8})
        msg_id, ack = await ctx.publish_start(workflow_id, definition, params)
        if ack.seq not in sequences:
            result.problem(f"{workflow_id}: stored at {ack.seq}, outside the armed {sorted(sequences)}")
        ledger.add(
            Acked(workflow_id, WorkflowStatus.WAITING if waiting else WorkflowStatus.COMPLETED, command_id=msg_id)
        )
    # b) The publisher's ack is lost: it publishes again with the same Nats-Msg-Id; JetStream drops it.
    republished = 0
    for workflow_id in ctx.ids("d7p", max(2, sizes.ambiguous // 2)):
        msg_id, _ = await ctx.publish_start(workflow_id, "drill_quick", {"n": 9})
        _, again = await ctx.publish_start(workflow_id, "drill_quick", {"n": 9}, msg_id=msg_id)
        republished += 1
        if not again.duplicate:
            result.problem(f"{workflow_id}: a re-publish with the same Nats-Msg-Id was stored twice")
        ledger.add(Acked(workflow_id, command_id=msg_id))
    await check(stack, ctx.log, ledger, result, sizes.settle_s + (0 if sizes.lose_ack_by_nak else ACK_WAIT_S))
    result.figures["acks lost"] = len(rule.lost)
    result.figures["how"] = "turned into NAK (redelivered at once)" if rule.nak else "dropped (redelivered after 30 s)"
    result.figures["redelivered starts recognised"] = (
        stack.log_count("dispatcher", "dispatch.duplicate_start") - duplicates_before
    )
    result.figures["publisher retries deduplicated"] = republished
    if len(rule.lost) != len(sequences):
        result.problem(f"only {len(rule.lost)} of {len(sequences)} acks were intercepted")
    stack.proxy.rule = None


DRILLS = [
    Drill(
        "worker-kill",
        "kill -9 a worker during an HTTP node",
        "Runs of `drill_http` (one HTTP node, `retry.maxAttempts` 5, `timeoutMs` 5000) call the loopback "
        "downstream, which holds every call open; once every run is mid-request the worker's process group "
        "gets SIGKILL, the downstream is released and the worker restarted on the same ports.",
        "Every run COMPLETED exactly once; the downstream saw at most 5 calls per run (the retry policy) and "
        "all calls of one run carried the same `Idempotency-Key`.",
        worker_kill,
    ),
    Drill(
        "dispatcher-kill",
        "kill -9 the dispatcher with commands in flight",
        "The dispatcher is frozen (SIGSTOP) while start commands of `drill_quick` are published straight to "
        "JetStream, then thawed; as soon as its log shows a quarter of the runs started it gets SIGKILL with "
        "commands fetched but unacknowledged (some already started on Temporal), and is restarted. "
        "Unacknowledged commands come back after the consumer's 30 s ack wait.",
        "Every command JetStream acknowledged has exactly one Temporal execution and one event chain, and "
        "its run COMPLETED with status events seq 1..n; the drill waits until no command is pending or "
        "unacknowledged, so a late redelivery cannot hide.",
        dispatcher_kill,
    ),
    Drill(
        "notifier-kill",
        "kill -9 the notifier while sync waiters and webhooks are pending",
        "Sync starts (`syncTimeoutMs` 20000) and async starts with a `callbackUrl` of `drill_http`, held at "
        "the downstream; then the downstream is released, and once the first webhook reaches the (slow, "
        "0.5 s) receiver the notifier gets SIGKILL and is restarted.",
        "Every sync waiter answered 200 or 202; every async run's COMPLETED webhook was delivered with a "
        "valid Standard Webhooks signature; no `webhook-id` was delivered for two different events; every "
        "run completed exactly once.",
        notifier_kill,
    ),
    Drill(
        "nats-restart",
        "restart NATS (file store)",
        "Steady load (start commands straight to JetStream and async starts through the gateway, 5 a "
        "second each); NATS gets SIGKILL, stays down (5 s; smoke 2 s), and is started again on the same port and "
        "data directory; the load goes on for 3 s after it is back.",
        "Every command whose publish was acknowledged (PubAck, or the gateway's 202) ran exactly once to "
        "COMPLETED with complete status events, every async run's webhook was delivered, and the event "
        "stream kept every stored message. Refused publishes are counted, not required to run.",
        nats_restart,
    ),
    Drill(
        "redis-stop",
        "stop Redis",
        "Redis is stopped; sync starts (`syncTimeoutMs` 5000) and GETs go through the gateway, definitions "
        "are read from the dsl-store, and start commands go straight to JetStream; then Redis is started "
        "again (empty: it keeps no data).",
        "No answer is a 5xx: sync starts answer 200 (from Temporal state) or 202; definitions load (200); "
        "the direct starts run while Redis is down; once Redis is back (and every service ready), sync starts "
        "answer 200 or 202, not 5xx; every acknowledged command ran exactly once.",
        redis_stop,
    ),
    Drill(
        "temporal-stop",
        "stop Temporal under load",
        "Temporal (dev server, SQLite file) is stopped for the outage (30 s; smoke 8 s) while load runs: "
        "start commands straight to JetStream and async starts through the gateway (5 a second each), three "
        "sync starts; then "
        "Temporal is started again on the same port and database.",
        "Every command accepted during the outage (PubAck or 202) ran exactly once to COMPLETED after "
        "Temporal returned, with its webhook delivered.",
        temporal_stop,
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
        "`commandId`); the redelivered starts were recognised; the re-publish was deduplicated.",
        ambiguous_start,
    ),
]
