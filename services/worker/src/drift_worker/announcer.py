"""Node events of a segment, published in order without awaiting each JetStream acknowledgement.

`drift_runtime.messaging.publish` is one request per event: a span, a reply inbox, a timer and an
awaited acknowledgement each. A segment publishes one event per visit while the next visits are
evaluated, so here each event is a plain publish with a reply subject under one subscription per
connection (`Acknowledgements`), and a `Batch` awaits all of its acknowledgements at once before the
segment's activity returns: every event is stored before the run moves on, as before. Each event keeps
its `Nats-Msg-Id`, so a retried segment that publishes them again stores no duplicate.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from drift_runtime.messaging import MSG_ID
from drift_runtime.telemetry import inject_headers
from drift_schema import subjects
from drift_schema.events import NodeEvent

ACK_TIMEOUT_S = 5.0
_NO_RESPONDERS = "503"


class Unacknowledged(Exception):
    """An event was not acknowledged as stored (an error, or no answer in time): the segment is retried."""


class _PubAck(msgspec.Struct):
    """JetStream's answer to a publish (only what is read here)."""

    duplicate: bool = False
    error: dict[str, Any] | None = None


class Acknowledgements:
    """One reply subscription on the worker's connection: acknowledgements routed to their publishes."""

    def __init__(self, js: JetStreamContext) -> None:
        # The JetStream context's own connection: the publishes must leave on the one the streams answer.
        self.nc: NatsClient = js._nc
        self.prefix: str | None = None
        self.waiting: dict[str, asyncio.Future[bool]] = {}
        self._subscribing = asyncio.Lock()
        self._decoder = msgspec.json.Decoder(_PubAck)
        self._issued = 0

    def token(self) -> str:
        """A reply token no other publish of this process uses."""
        self._issued += 1
        return str(self._issued)

    async def ready(self) -> str:
        """The reply subject prefix (subscribed on first use)."""
        if self.prefix is None:
            async with self._subscribing:
                if self.prefix is None:
                    prefix = self.nc.new_inbox()
                    await self.nc.subscribe(f"{prefix}.*", cb=self._on_reply)
                    self.prefix = prefix
        return self.prefix

    async def _on_reply(self, msg: Msg) -> None:
        prefix = self.prefix or ""
        waiter = self.waiting.pop(msg.subject[len(prefix) + 1 :], None)
        if waiter is None or waiter.done():
            return
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            waiter.set_exception(Unacknowledged("no stream holds the node events' subject"))
            return
        try:
            ack = self._decoder.decode(msg.data)
        except msgspec.DecodeError:
            waiter.set_exception(Unacknowledged("an acknowledgement that is not JetStream's"))
            return
        if ack.error is not None:
            waiter.set_exception(Unacknowledged(f"JetStream refused a node event: {ack.error}"))
        else:
            waiter.set_result(not ack.duplicate)


class Batch:
    """The node events of one segment: `send` each as it comes, then `settled` for all acknowledgements."""

    def __init__(self, acks: Acknowledgements) -> None:
        self.acks = acks
        self.events: list[NodeEvent] = []
        self.answers: list[asyncio.Future[bool]] = []
        self._sent = 0
        self._pump: asyncio.Future[None] | None = None
        # The activity's trace: every event of the segment continues it (the notifier's spans join it).
        self._headers = inject_headers({})

    def __len__(self) -> int:
        return len(self.events)

    def send(self, event: NodeEvent) -> None:
        """Queue `event` for publishing after those already sent (the connection keeps their order)."""
        self.events.append(event)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.ensure_future(self._publish())

    async def _publish(self) -> None:
        prefix = await self.acks.ready()
        loop = asyncio.get_running_loop()
        while self._sent < len(self.events):
            event = self.events[self._sent]
            self._sent += 1
            token = self.acks.token()
            answer: asyncio.Future[bool] = loop.create_future()
            self.acks.waiting[token] = answer
            self.answers.append(answer)
            await self.acks.nc.publish(
                subjects.node_events(event.tenant, event.workflow_id),
                msgspec.json.encode(event),
                reply=f"{prefix}.{token}",
                headers={**self._headers, MSG_ID: event.event_id},
            )

    async def settled(self) -> list[NodeEvent]:
        """Wait until every event is acknowledged; the events stored now (not duplicates). Unacknowledged else."""
        if self._pump is not None:
            await self._pump  # every event sent (raises when a publish did)
        if not self.answers:
            return []
        _, waiting = await asyncio.wait(self.answers, timeout=ACK_TIMEOUT_S)
        if waiting:
            for answer in waiting:
                answer.cancel()
            self.acks.waiting = {token: f for token, f in self.acks.waiting.items() if not f.done()}
            raise Unacknowledged(f"{len(waiting)} node events were not acknowledged within {ACK_TIMEOUT_S:g} s")
        stored = []
        for event, answer in zip(self.events, self.answers, strict=True):
            if answer.result():  # raises the first refusal
                stored.append(event)
        return stored
