"""One Redis connection for the run channels of every sync call in flight in this process.

A sync call subscribes to its run's channel, and waits for Redis to confirm, before it publishes
its command (`waiters`). With a pub/sub connection of its own per call, that meant a new TCP
connection and its handshake before every command: 2 ms on an idle machine, tens of ms under load,
all of it before the command went out. Here one long-lived connection carries every channel a call
waits on: a subscription is one SUBSCRIBE on it, confirmed by Redis before the caller goes on,
exactly as before, and calls waiting on the same run share it.

The connection never reconnects behind its callers' backs (no retries): subscriptions lost with a
connection would miss announcements unseen. Any failure ends every watch on it with a RedisError
(each caller then does what it does when Redis fails: recovers over NATS), and the next
subscription opens a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from dataclasses import dataclass, field

import structlog
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = structlog.get_logger("drift.gateway")

OPEN_TIMEOUT_S = 5.0
"""How long opening the shared connection (connect and the first SUBSCRIBE confirmed) may take."""
READ_WAKE_S = 1.0
"""The reader wakes at least this often, so the connection's health checks (a PING) still run while idle."""


class ChannelsFailed(RedisConnectionError):
    """The shared connection failed: every watch on it has ended."""


class ChannelWatch:
    """The messages of one channel, from the moment its subscription was confirmed until it is left."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        self._state: _Channel | None = None

    async def next(self, timeout_s: float) -> bytes | None:
        """The next message's data, or None when none came within `timeout_s`.

        Raises ChannelsFailed once the shared connection is gone.
        """
        try:
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            try:
                async with asyncio.timeout(timeout_s):
                    item = await self._queue.get()
            except TimeoutError:
                return None
        if isinstance(item, BaseException):
            self._queue.put_nowait(item)  # every later read fails the same way
            raise item
        return item

    def _put(self, item: bytes | BaseException) -> None:
        self._queue.put_nowait(item)


@dataclass(eq=False)
class _Channel:
    """One subscribed channel: its watches, and Redis's confirmation of its SUBSCRIBE."""

    name: str
    confirmed: asyncio.Future[None]
    watches: set[ChannelWatch] = field(default_factory=set)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RunChannels:
    """Subscriptions to run channels over one shared connection (see the module's docstring)."""

    def __init__(self, redis: Redis) -> None:
        pool = redis.connection_pool
        # The same server and settings as the service's client, without retries: a reconnect would
        # resubscribe silently and lose what was announced meanwhile (see the module's docstring).
        self._redis = Redis(
            connection_pool=ConnectionPool(
                connection_class=pool.connection_class,
                **{**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0)},
            )
        )
        # Nothing publishes here: subscribed from the start, the connection stays in pub/sub mode, so no
        # SUBSCRIBE ever runs a health check that would read a reply meant for the reader.
        self._anchor = f"drift:gateway:{uuid.uuid4().hex}"
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._channels: dict[str, _Channel] = {}
        self._pending: dict[str, deque[asyncio.Future[None]]] = {}
        """Per channel, the SUBSCRIBEs sent and not yet confirmed, oldest first (Redis answers in order)."""
        self._opening: asyncio.Task[PubSub] | None = None

    async def subscribe(self, channel: str, timeout_s: float) -> ChannelWatch:
        """Watch `channel` from now on: returns once Redis confirmed the subscription.

        Raises RedisError (or TimeoutError past `timeout_s`) when it could not; nothing is left subscribed then.
        """
        watch = ChannelWatch(channel)
        async with asyncio.timeout(timeout_s):
            pubsub = await self._open()
            state = self._channels.get(channel)
            if state is None:
                state = _Channel(channel, asyncio.get_running_loop().create_future())
                self._channels[channel] = state
                # Queued before the command is sent: its confirmation cannot come first.
                self._pending.setdefault(channel, deque()).append(state.confirmed)
                state.watches.add(watch)
                watch._state = state
                try:
                    await pubsub.subscribe(channel)
                except BaseException as error:
                    # Sent or not, its confirmation can no longer be matched: the connection is done with.
                    await self._fail(pubsub, error)
                    raise
            else:
                state.watches.add(watch)
                watch._state = state
            try:
                # Shielded: one caller giving up must not cancel the confirmation others wait on.
                await asyncio.shield(state.confirmed)
            except BaseException:
                await self.unsubscribe(watch)
                raise
        return watch

    async def unsubscribe(self, watch: ChannelWatch) -> None:
        """Stop watching; the channel is unsubscribed once no watch is left on it. Never raises."""
        state, watch._state = watch._state, None
        if state is None:
            return
        state.watches.discard(watch)
        if state.watches or self._channels.get(state.name) is not state:
            return  # others still watch it, or it belonged to a connection that has failed since
        del self._channels[state.name]
        pubsub = self._pubsub
        if pubsub is None:
            return
        try:
            await pubsub.unsubscribe(state.name)
        except (RedisError, OSError) as error:
            await self._fail(pubsub, error)

    async def close(self) -> None:
        """End every watch and close the connection."""
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
            with contextlib.suppress(BaseException):
                await self._opening
        if self._pubsub is not None:
            await self._fail(self._pubsub, ChannelsFailed("the gateway is stopping"))
        await self._redis.aclose()

    async def _open(self) -> PubSub:
        """The shared connection, opened when there is none; callers meanwhile share one attempt and its outcome.

        Shared, not queued one after another: with Redis unreachable every waiting call fails with the
        one attempt (and falls back at once), instead of each waiting out the attempts before its own.
        """
        if self._pubsub is not None:
            return self._pubsub
        if self._opening is None or self._opening.done():
            self._opening = asyncio.create_task(self._connect())
            # Its failure is its callers'; one that all of them gave up on leaves no "never retrieved" warning.
            self._opening.add_done_callback(lambda task: task.cancelled() or task.exception())
        # Shielded: one caller giving up must not end the attempt the others wait on.
        return await asyncio.shield(self._opening)

    async def _connect(self) -> PubSub:
        pubsub = self._redis.pubsub()
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                await pubsub.subscribe(self._anchor)
                await self._confirmed(pubsub)
        except BaseException:
            await _closed(pubsub)
            raise
        self._pubsub = pubsub
        self._reader = asyncio.create_task(self._read(pubsub))
        return pubsub

    @staticmethod
    async def _confirmed(pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=READ_WAKE_S)
            if message is not None and message["type"] == "subscribe":
                return

    async def _read(self, pubsub: PubSub) -> None:
        """Hand messages to their channel's watches and confirmations to their SUBSCRIBE; on failure end them all."""
        try:
            while True:
                message = await pubsub.get_message(timeout=READ_WAKE_S)
                if message is None:
                    continue
                if message.get("channel") is None:
                    continue
                kind, channel = message["type"], _text(message["channel"])
                if kind == "message":
                    state = self._channels.get(channel)
                    if state is not None:
                        for watch in state.watches:
                            watch._put(message["data"])
                elif kind == "subscribe":
                    pending = self._pending.get(channel)
                    if pending:
                        confirmed = pending.popleft()
                        if not pending:
                            del self._pending[channel]
                        if not confirmed.done():
                            confirmed.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("gateway.run_channels_failed", error=str(error) or type(error).__name__)
            await self._fail(pubsub, error)

    async def _fail(self, pubsub: PubSub, error: BaseException) -> None:
        """End every watch and pending subscription of `pubsub` with a RedisError; the next one opens anew."""
        if self._pubsub is not pubsub:
            return
        self._pubsub = None
        failure = error if isinstance(error, ChannelsFailed) else ChannelsFailed(f"run channels: {error}")
        channels, self._channels = self._channels, {}
        pending, self._pending = self._pending, {}
        for futures in pending.values():
            for future in futures:
                if not future.done():
                    future.set_exception(failure)
                    future.exception()  # retrieved: a subscription given up meanwhile leaves no warning
        for state in channels.values():
            for watch in state.watches:
                watch._put(failure)
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        await _closed(pubsub)


async def _closed(pubsub: PubSub) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()
