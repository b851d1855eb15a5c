"""Sync waiters: subscribe to a run's channel first, then publish, then wait for the answer.

Subscribing before the command is published means no answer can be missed; a
message lost on the way is recovered from the run's last-state key, which is
also checked at intervals and at the deadline.

When Redis cannot be reached the run's NATS status events carry the answer instead
(`SyncCall`): the command is durable in JetStream either way, so Redis being down
costs a sync call its fast path, never its answer.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Self

import msgspec
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from drift_client.stream import replay
from drift_gateway.channels import ChannelWatch, RunChannels
from drift_schema import codec, redis_keys, subjects
from drift_schema.api import WorkflowResponse
from drift_schema.context import RunContext
from drift_schema.events import WorkflowEvent
from drift_schema.run import STATE_QUERY, RunSnapshot, temporal_id
from drift_schema.statuses import WorkflowStatus

RECHECK_INTERVAL_S = 2.0
SUBSCRIBE_TIMEOUT_S = 5.0
STATE_QUERY_TIMEOUT = timedelta(seconds=2)
tracer = trace.get_tracer("drift.gateway.waiters")
log = structlog.get_logger("drift.gateway")


def answers(event: WorkflowEvent, command_id: str) -> bool:
    """An event answers a command when the command caused it and it is stable (or a rejection)."""
    if event.command_id != command_id:
        return False
    return event.workflow_status.is_stable or event.workflow_status == WorkflowStatus.REJECTED


def _decoded(data: bytes | str) -> WorkflowEvent | None:
    """The status event in `data`; None when it does not decode (then it answers nothing)."""
    try:
        return codec.decode_with(codec.workflow_event_decoder, data)
    except codec.DecodeError:
        return None


async def last_state(redis: Redis, tenant: str, workflow_id: str) -> WorkflowEvent | None:
    body = await redis.hget(redis_keys.last_state(tenant, workflow_id), "body")
    return None if body is None else _decoded(body)


class _Subscription(abc.ABC):
    """`async with` subscribes (raising when the server does not confirm) and unsubscribes on the way out."""

    @abc.abstractmethod
    async def subscribe(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.subscribe()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class RunWaiter(_Subscription):
    """Waits on one run's channel for the stable state a given command leads to.

    Over the process's shared connection (`channels`), or without it over a pub/sub connection of its own.
    """

    def __init__(self, redis: Redis, tenant: str, workflow_id: str, channels: RunChannels | None = None) -> None:
        self.redis = redis
        self.tenant = tenant
        self.workflow_id = workflow_id
        self.channel = redis_keys.run_channel(tenant, workflow_id)
        self.channels = channels
        self.pubsub: PubSub | None = None if channels is not None else redis.pubsub()
        self.watch: ChannelWatch | None = None

    async def subscribe(self) -> None:
        """Subscribe to the run's channel; RedisError (or TimeoutError) when Redis does not confirm."""
        # Either way it returns once Redis confirmed: only then is no later announcement missed.
        if self.channels is not None:
            self.watch = await self.channels.subscribe(self.channel, SUBSCRIBE_TIMEOUT_S)
            return
        assert self.pubsub is not None
        await self.pubsub.subscribe(self.channel)
        while True:
            message = await self.pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT_S)
            if message is None:
                raise TimeoutError("redis did not confirm the subscription")
            if message["type"] == "subscribe":
                return

    async def close(self) -> None:
        """Unsubscribe (and give an own connection back); a Redis gone meanwhile only closes it."""
        if self.channels is not None:
            if self.watch is not None:
                await self.channels.unsubscribe(self.watch)
                self.watch = None
            return
        assert self.pubsub is not None
        try:
            with contextlib.suppress(RedisError, OSError):
                await self.pubsub.unsubscribe(self.channel)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await self.pubsub.aclose()

    async def _next(self, timeout_s: float) -> bytes | str | None:
        """The data of the channel's next message within `timeout_s`, else None."""
        if self.watch is not None:
            return await self.watch.next(timeout_s)
        assert self.pubsub is not None, "wait() outside `async with`"
        message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout_s)
        if message is not None and message["type"] == "message":
            data: bytes | str = message["data"]
            return data
        return None

    async def wait(self, command_id: str, timeout_s: float) -> WorkflowEvent | None:
        """The event answering `command_id`, or None at the deadline (one span: the Redis hop back)."""
        attributes = {"messaging.system": "redis", "messaging.destination.name": self.channel}
        with tracer.start_as_current_span(
            f"{self.channel} receive", kind=SpanKind.CONSUMER, attributes=attributes
        ) as span:
            answer, source = await self._wait(command_id, timeout_s)
            span.set_attribute("drift.answered_by", source)
            if answer is not None:
                span.set_attribute("drift.seq", answer.seq)
                span.set_attribute("drift.workflow_status", answer.workflow_status.value)
            return answer

    async def _wait(self, command_id: str, timeout_s: float) -> tuple[WorkflowEvent | None, str]:
        deadline = time.monotonic() + timeout_s
        next_check = time.monotonic() + RECHECK_INTERVAL_S
        while (remaining := deadline - time.monotonic()) > 0:
            data = await self._next(min(remaining, max(0.0, next_check - time.monotonic())))
            if data is not None:
                try:
                    event = msgspec.json.decode(data, type=WorkflowEvent)
                except msgspec.DecodeError:
                    continue
                if answers(event, command_id):
                    return event, "channel"
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + RECHECK_INTERVAL_S
                stored = await last_state(self.redis, self.tenant, self.workflow_id)
                if stored is not None and answers(stored, command_id):
                    return stored, "last_state"
        stored = await last_state(self.redis, self.tenant, self.workflow_id)
        if stored is not None and answers(stored, command_id):
            return stored, "last_state"
        return None, "timeout"


class StatusEventWaiter(_Subscription):
    """Waits on one run's NATS status events (`drift.<tenant>.evt.workflow.<id>`) for a command's answer.

    The way back when Redis is out of reach. A core subscription the server has confirmed (a
    flush: PING answered by PONG after the SUB) before the command is published misses no later
    event, the same guarantee the Redis channel gives; the command id picks the caller's answer.
    """

    def __init__(self, nc: NatsClient, tenant: str, workflow_id: str) -> None:
        self.nc = nc
        self.subject = subjects.workflow_events(tenant, workflow_id)
        self.subscription: Subscription | None = None

    async def subscribe(self) -> None:
        """Subscribe and wait for the server to confirm; on any failure nothing stays subscribed."""
        self.subscription = await self.nc.subscribe(self.subject)
        try:
            await self.nc.flush(timeout=int(SUBSCRIBE_TIMEOUT_S))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Unsubscribe; a NATS connection gone meanwhile has dropped the subscription already."""
        if self.subscription is not None:
            with contextlib.suppress(NatsError):
                await self.subscription.unsubscribe()
            self.subscription = None

    async def wait(self, command_id: str, timeout_s: float) -> WorkflowEvent | None:
        """The event answering `command_id`, or None at the deadline (one span: the NATS hop back)."""
        attributes = {"messaging.system": "nats", "messaging.destination.name": self.subject}
        with tracer.start_as_current_span(
            f"{self.subject} receive", kind=SpanKind.CONSUMER, attributes=attributes
        ) as span:
            answer = await self._wait(command_id, timeout_s)
            span.set_attribute("drift.answered_by", "status_event" if answer is not None else "timeout")
            if answer is not None:
                span.set_attribute("drift.seq", answer.seq)
                span.set_attribute("drift.workflow_status", answer.workflow_status.value)
            return answer

    async def _wait(self, command_id: str, timeout_s: float) -> WorkflowEvent | None:
        assert self.subscription is not None, "wait() outside `async with`"
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                msg = await self.subscription.next_msg(timeout=remaining)
            except TimeoutError:  # nats.errors.TimeoutError is one
                return None
            event = _decoded(msg.data)
            if event is not None and answers(event, command_id):
                return event
        return None


async def stored_answer(js: JetStreamContext, tenant: str, workflow_id: str, command_id: str) -> WorkflowEvent | None:
    """The answer to `command_id` among the run's status events kept in the event stream, if it is there."""
    subject = subjects.workflow_events(tenant, workflow_id)
    async for msg in replay(js, subject, subjects.EVENT_STREAM):
        event = _decoded(msg.data)
        if event is not None and answers(event, command_id):
            return event
    return None


async def temporal_state(temporal: TemporalClient, tenant: str, workflow_id: str) -> WorkflowResponse | None:
    """The run's state from its `state` query; None when Temporal does not know the run or cannot answer."""
    handle = temporal.get_workflow_handle(temporal_id(tenant, workflow_id))
    try:
        snapshot = await handle.query(STATE_QUERY, result_type=RunSnapshot, rpc_timeout=STATE_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError, TimeoutError) as error:
        log.info("gateway.state_query_unanswered", error=str(error))
        return None
    return response_of(snapshot)


def response_of(state: WorkflowResponse | RunSnapshot | RunContext) -> WorkflowResponse:
    """Just the WorkflowResponse fields of a state (an event, a snapshot): what clients are answered."""
    return WorkflowResponse(
        workflow_id=state.workflow_id,
        workflow_status=state.workflow_status,
        current_node=state.current_node,
        disposition=state.disposition,
        error_message=state.error_message,
        view=state.view,
    )


PublishCommand = Callable[[], Awaitable[object]]


# eq=False: a call is one object with its own state, compared (and hashed) by identity.
@dataclass(eq=False)
class SyncCall:
    """One sync command: published once, answered over Redis, or over NATS while Redis is out of reach.

    `send` raises only before the command is published (nothing was sent: the caller answers 503
    and a retry is safe). Once JetStream has acknowledged the command no failure escapes: a 503
    would make the client send the command again, so the worst answer is None, which the
    caller turns into a 202 with `best_known`.
    """

    redis: Redis
    nc: NatsClient
    js: JetStreamContext
    tenant: str
    workflow_id: str
    channels: RunChannels | None = None
    """The process's shared subscriptions to run channels; None: a pub/sub connection of the call's own."""
    degraded: bool = field(default=False, init=False)
    """Whether Redis failed this call: its last-state key is then not worth asking either."""

    async def send(self, publish_command: PublishCommand, command_id: str, timeout_s: float) -> WorkflowEvent | None:
        """Publish the command and wait up to `timeout_s` for its answer; None at the deadline."""
        deadline = time.monotonic() + timeout_s
        waiter = RunWaiter(self.redis, self.tenant, self.workflow_id, self.channels)
        try:
            await waiter.subscribe()
        except (RedisError, TimeoutError) as error:
            await waiter.close()
            self._redis_failed("subscribe", error)
            return await self._send_over_nats(publish_command, command_id, deadline)
        try:
            await publish_command()
            try:
                return await waiter.wait(command_id, _left(deadline))
            except (RedisError, TimeoutError) as error:
                self._redis_failed("wait", error)
                return await self._recover_over_nats(command_id, deadline)
        finally:
            await waiter.close()

    async def best_known(self, temporal: TemporalClient) -> WorkflowResponse | None:
        """The run's state for a 202: Redis's last state, else (Redis failing) Temporal's; never raises."""
        if not self.degraded:
            try:
                return await last_state(self.redis, self.tenant, self.workflow_id)
            except RedisError as error:
                self._redis_failed("last_state", error)
        return await temporal_state(temporal, self.tenant, self.workflow_id)

    def _redis_failed(self, during: str, error: BaseException) -> None:
        self.degraded = True
        log.warning("gateway.redis_unavailable", during=during, error=str(error) or type(error).__name__)

    async def _send_over_nats(
        self, publish_command: PublishCommand, command_id: str, deadline: float
    ) -> WorkflowEvent | None:
        # Failures up to and including the publish escape: nothing has been sent yet.
        async with StatusEventWaiter(self.nc, self.tenant, self.workflow_id) as waiter:
            await publish_command()
            try:
                return await waiter.wait(command_id, _left(deadline))
            except (NatsError, TimeoutError) as error:
                log.warning("gateway.status_events_unavailable", during="wait", error=str(error))
                return None

    async def _recover_over_nats(self, command_id: str, deadline: float) -> WorkflowEvent | None:
        """After Redis failed mid-wait: the events from now on, plus those the stream already holds."""
        try:
            async with StatusEventWaiter(self.nc, self.tenant, self.workflow_id) as waiter:
                # Subscribed first, then read back: an answer published in between is in one or the other.
                async with asyncio.timeout(_left(deadline)):
                    stored = await stored_answer(self.js, self.tenant, self.workflow_id, command_id)
                if stored is not None:
                    return stored
                return await waiter.wait(command_id, _left(deadline))
        except (NatsError, TimeoutError) as error:
            log.warning("gateway.status_events_unavailable", during="recover", error=str(error))
            return None


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
