"""Webhook delivery that is fair across tenants: one tenant's hanging receivers only ever use its own share.

Why not the generic `messaging.consume` loop: it waits for a free slot before it fetches more, and
JetStream hands a durable consumer its messages in stream order, at most `max_ack_pending`
unacknowledged at a time. Twenty receivers that trickle their headers then fill every slot and every
other tenant's webhooks wait behind them. Here the fetch loop never waits on a receiver:

- Each fetched event is sorted at once: not a webhook (no `callbackUrl`, or not a stable state) is
  acked on the spot; a webhook joins its tenant's queue.
- Tenants' queues are served round-robin by `FairLanes`: at most `tenant_concurrency` deliveries of
  one tenant in flight and `concurrency` overall, so a tenant with free share is never behind another.
- A tenant may hold at most `tenant_backlog` events (queued or in flight). Past that its events are
  deferred (`nak` with a growing delay) instead of held, so one tenant can never take the whole
  `max_ack_pending` window (`max_held`) and stop the consumer from reaching other tenants' events.
- Held events are kept alive with in-progress acks while they wait, so JetStream redelivers them only
  if this notifier dies (then another instance, or the restarted one, delivers them: nothing is lost).
  A redelivery of an event still held here (a missed in-progress ack) is folded into it, never doubled.
- Retry semantics are the sender's (`WebhookSender.deliver`): ack when settled, `nak` with the backoff
  delay on a failed attempt. A deferral is not an attempt: the attempt number is JetStream's delivery
  count minus the deferrals this process made, and the consumer has no `max_deliver` (the sender gives
  up after `MAX_ATTEMPTS` attempts), so deferrals never use up a receiver's retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge

from drift_notifier.config import WebhookLimits
from drift_notifier.states import decode_event
from drift_notifier.webhooks import WebhookSender
from drift_runtime import consumers
from drift_runtime.messaging import UNLIMITED_DELIVERIES, PoisonMessage, TransientFault, delivery_count
from drift_runtime.telemetry import extract_context
from drift_schema import subjects
from drift_schema.events import WorkflowEvent

log = structlog.get_logger("drift.notifier")
tracer = trace.get_tracer("drift.notifier.delivery")

DURABLE = "notifier-webhooks"
FETCH_BATCH = 64
FETCH_TIMEOUT_S = 1.0
SHUTDOWN_GRACE_S = 5.0
"""At shutdown, how long attempts in flight may finish before they are cancelled and handed back."""
ACK_WAIT_S = 30.0
"""A dead notifier's events come back this soon; a live one renews what it holds every third of it."""
DEFER_BASE_S = 5.0
DEFER_MAX_S = 60.0
REMEMBERED_DEFERRALS = 100_000
"""How many deferred events' deferral counts are remembered (oldest forgotten first)."""

deferred_total = Counter("drift_webhook_deferred_total", "Webhook events deferred: their tenant's backlog was full")
held_gauge = Gauge("drift_webhook_held", "Webhook events held by this notifier (queued or in flight)")

T = TypeVar("T")


class FairLanes(Generic[T]):
    """Runs submitted items round-robin across tenants, at most `per_tenant` per tenant and `total` at once.

    A tenant whose items never finish holds at most `per_tenant` slots; every other tenant's next item
    starts as soon as a slot of the `total` is free, before that tenant's further items.
    """

    def __init__(self, total: int, per_tenant: int, run: Callable[[str, T], Coroutine[Any, Any, None]]) -> None:
        self.total = total
        self.per_tenant = per_tenant
        self._run = run
        self._queues: dict[str, deque[T]] = {}
        self._running: dict[str, int] = {}
        self._ready: deque[str] = deque()
        """Tenants with a queued item and a free slot of their own, in the order they are served."""
        self._in_ready: set[str] = set()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def held(self, tenant: str) -> int:
        """The tenant's items, queued or running."""
        return len(self._queues.get(tenant, ())) + self._running.get(tenant, 0)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, tenant: str, item: T) -> None:
        """Queue `item` for `tenant`; it starts at once if both its tenant and the total have a free slot."""
        self._queues.setdefault(tenant, deque()).append(item)
        self._mark_ready(tenant)
        self._pump()

    def take_queued(self) -> list[T]:
        """Remove and return every item not yet started (for a shutdown)."""
        items = [item for queue in self._queues.values() for item in queue]
        self._queues.clear()
        self._ready.clear()
        self._in_ready.clear()
        return items

    async def cancel_running(self) -> None:
        """Cancel every running item and wait until they have ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait until no item is running and none could start."""
        await self._idle.wait()

    def _mark_ready(self, tenant: str) -> None:
        if tenant not in self._in_ready and self._queues.get(tenant) and self._running.get(tenant, 0) < self.per_tenant:
            self._ready.append(tenant)
            self._in_ready.add(tenant)

    def _pump(self) -> None:
        while self._in_flight < self.total and self._ready:
            tenant = self._ready.popleft()
            self._in_ready.discard(tenant)
            queue = self._queues[tenant]
            item = queue.popleft()
            if not queue:
                del self._queues[tenant]
            self._running[tenant] = self._running.get(tenant, 0) + 1
            self._in_flight += 1
            self._idle.clear()
            task: asyncio.Task[None] = asyncio.create_task(self._run(tenant, item))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._finished, tenant))
            # Back of the line: every other ready tenant starts one before this one starts another.
            self._mark_ready(tenant)

    def _finished(self, tenant: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook.lane_crashed", tenant=tenant, error=repr(task.exception()))
        running = self._running[tenant] - 1
        if running:
            self._running[tenant] = running
        else:
            del self._running[tenant]
        self._in_flight -= 1
        self._mark_ready(tenant)
        self._pump()
        if not self._in_flight:
            self._idle.set()


@dataclass
class Held:
    """An event this notifier holds until its webhook attempt is settled."""

    msg: Msg
    """The latest delivery of the event: acks go to it."""
    event: WorkflowEvent
    seq: int
    deferrals: int


@dataclass
class WebhookConsumer:
    """The `notifier-webhooks` durable consumer, with fair per-tenant delivery (see the module docstring)."""

    js: JetStreamContext
    sender: WebhookSender
    limits: WebhookLimits
    durable: str = DURABLE
    name: str = "drift-notifier"
    stream: str = subjects.EVENT_STREAM
    filter_subject: str = subjects.WORKFLOW_EVENT_SUBJECTS
    defer_base_s: float = DEFER_BASE_S
    shutdown_grace_s: float = SHUTDOWN_GRACE_S
    held: dict[int, Held] = field(default_factory=dict)
    deferrals: OrderedDict[int, int] = field(default_factory=OrderedDict)
    _room: asyncio.Event = field(default_factory=asyncio.Event)
    _lanes: FairLanes[Held] = field(init=False)

    def __post_init__(self) -> None:
        self._lanes = FairLanes(self.limits.concurrency, self.limits.tenant_concurrency, self._deliver)

    def consumer_config(self) -> ConsumerConfig:
        return consumers.durable_explicit(
            self.durable,
            self.filter_subject,
            # The sender gives up after MAX_ATTEMPTS attempts; deferrals must not count against them.
            max_deliver=UNLIMITED_DELIVERIES,
            ack_wait_s=ACK_WAIT_S,
            max_ack_pending=self.limits.max_held,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch, sort and deliver until `stop` is set; then hand back what is queued and finish what is in flight."""
        try:
            # Create, or update an existing consumer's limits (an older notifier made it with other ones).
            await self.js.add_consumer(self.stream, self.consumer_config())
        except Exception as error:
            log.warning("webhook.consumer_not_updated", consumer=self.durable, error=str(error))
        subscription = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        fetcher = consumers.Fetcher(subscription, FETCH_TIMEOUT_S)
        heartbeat = asyncio.create_task(self._keep_alive())
        try:
            while not stop.is_set():
                room = self.limits.max_held - len(self.held)
                if room <= 0:
                    self._room.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._room.wait(), timeout=1.0)
                    continue
                for msg in await consumers.fetched(fetcher, min(FETCH_BATCH, room), self.durable):
                    await self._take(msg)
        finally:
            # Gone before anything is handed back: a pull request of this subscription still open on the server
            # (one a fetch gave up on) would otherwise take a message handed back below, for no one to read.
            # The server skips pull requests whose inbox has no subscriber.
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            for entry in self._lanes.take_queued():
                # Not started: let the next notifier (or this one, restarted) have it at once.
                self._forget(entry)
                with contextlib.suppress(Exception):
                    await entry.msg.nak()
            try:
                await asyncio.wait_for(self._lanes.wait_idle(), self.shutdown_grace_s)
            except TimeoutError:
                # Receivers still holding attempts: hand them back too (a receiver may see the webhook
                # again, with the same webhook-id) rather than outlast the process manager's patience.
                await self._lanes.cancel_running()
                for entry in list(self.held.values()):
                    self._forget(entry)
                    with contextlib.suppress(Exception):
                        await entry.msg.nak()
            heartbeat.cancel()

    async def _take(self, msg: Msg) -> None:
        seq = int(msg.metadata.sequence.stream)
        entry = self.held.get(seq)
        if entry is not None:
            # JetStream redelivered an event we still hold (an in-progress ack went missing): answer its
            # newest delivery, attempt it once.
            msg.data = b""
            entry.msg = msg
            return
        try:
            event = decode_event(msg)
        except PoisonMessage as poison:
            log.error("messaging.poison_message", subject=msg.subject, reason=str(poison))
            await msg.term()
            return
        if not self.sender.wanted(event):
            await msg.ack()
            return
        deferrals = self.deferrals.get(seq, 0)
        if self._lanes.held(event.tenant) >= self.limits.tenant_backlog:
            await self._defer(msg, event, seq, deferrals + 1)
            return
        # Held events keep only what the webhook needs: a run's context can be megabytes, and thousands are held.
        msg.data = b""
        event = msgspec.structs.replace(event, context=None, context_omitted=False)
        entry = Held(msg=msg, event=event, seq=seq, deferrals=deferrals)
        self.held[seq] = entry
        held_gauge.set(len(self.held))
        self._lanes.submit(event.tenant, entry)

    async def _defer(self, msg: Msg, event: WorkflowEvent, seq: int, deferrals: int) -> None:
        self.deferrals[seq] = deferrals
        self.deferrals.move_to_end(seq)
        while len(self.deferrals) > REMEMBERED_DEFERRALS:
            self.deferrals.popitem(last=False)
        delay = min(DEFER_MAX_S, self.defer_base_s * 2 ** (deferrals - 1)) * random.uniform(0.5, 1.0)
        deferred_total.inc()
        log.debug(
            "webhook.deferred",
            tenant=event.tenant,
            workflow_id=event.workflow_id,
            webhook_id=event.event_id,
            backlog=self._lanes.held(event.tenant),
            delay_s=round(delay, 1),
        )
        await msg.nak(delay=delay)

    async def _deliver(self, tenant: str, entry: Held) -> None:
        msg = entry.msg
        attempt = max(1, delivery_count(msg) - entry.deferrals)
        attributes = {
            "messaging.system": "nats",
            "messaging.destination.name": msg.subject,
            "messaging.consumer": self.name,
        }
        context = extract_context(msg.headers)
        with tracer.start_as_current_span(
            f"{msg.subject} process", context=context, kind=SpanKind.CONSUMER, attributes=attributes
        ) as span:
            try:
                await self.sender.deliver(entry.event, attempt)
            except TransientFault as fault:
                span.set_attribute("drift.outcome", "nak")
                log.info("messaging.redeliver", subject=msg.subject, reason=str(fault), delay_s=fault.delay_s)
                delay_s = fault.delay_s
                await self._settle(entry, lambda latest: latest.nak(delay=delay_s))
                return
            except Exception as error:
                span.record_exception(error)
                span.set_attribute("drift.outcome", "term")
                log.exception("messaging.handler_crashed", subject=msg.subject, tenant=tenant)
                await self._settle(entry, lambda latest: latest.term())
                return
            await self._settle(entry, lambda latest: latest.ack())

    async def _settle(self, entry: Held, answer: Callable[[Msg], Awaitable[None]]) -> None:
        self._forget(entry)
        try:
            await answer(entry.msg)
        except Exception as error:
            # JetStream redelivers it after the ack wait; the receiver sees the same webhook-id again.
            log.warning("webhook.ack_failed", seq=entry.seq, error=str(error))

    def _forget(self, entry: Held) -> None:
        self.held.pop(entry.seq, None)
        self.deferrals.pop(entry.seq, None)
        held_gauge.set(len(self.held))
        self._room.set()

    async def _keep_alive(self) -> None:
        interval = ACK_WAIT_S / 3
        while True:
            await asyncio.sleep(interval)
            for entry in list(self.held.values()):
                if self.held.get(entry.seq) is not entry:
                    continue  # settled meanwhile: a progress ack after a nak would postpone its redelivery
                with contextlib.suppress(Exception):
                    await entry.msg.in_progress()
