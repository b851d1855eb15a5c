"""Sync waiters: subscribe to a run's channel first, then publish, then wait for the answer.

Subscribing before the command is published means no answer can be missed; a
message lost on the way is recovered from the run's last-state key, which is
also checked at intervals and at the deadline.
"""

from __future__ import annotations

import time
from types import TracebackType

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from drift_schema import codec, redis_keys
from drift_schema.events import WorkflowEvent
from drift_schema.statuses import WorkflowStatus

RECHECK_INTERVAL_S = 2.0


def answers(event: WorkflowEvent, command_id: str) -> bool:
    """An event answers a command when the command caused it and it is stable (or a rejection)."""
    if event.command_id != command_id:
        return False
    return event.workflow_status.is_stable or event.workflow_status == WorkflowStatus.REJECTED


async def last_state(redis: Redis, tenant: str, workflow_id: str) -> WorkflowEvent | None:
    body = await redis.hget(redis_keys.last_state(tenant, workflow_id), "body")
    if body is None:
        return None
    try:
        return codec.decode_with(codec.workflow_event_decoder, body)
    except codec.DecodeError:
        return None


class RunWaiter:
    """Waits on one run's channel for the stable state a given command leads to."""

    def __init__(self, redis: Redis, tenant: str, workflow_id: str) -> None:
        self.redis = redis
        self.tenant = tenant
        self.workflow_id = workflow_id
        self.channel = redis_keys.run_channel(tenant, workflow_id)
        self.pubsub: PubSub = redis.pubsub()

    async def __aenter__(self) -> RunWaiter:
        await self.pubsub.subscribe(self.channel)
        # Wait for Redis to confirm: only then is no later announcement missed.
        while True:
            message = await self.pubsub.get_message(timeout=5.0)
            if message is None:
                raise TimeoutError("redis did not confirm the subscription")
            if message["type"] == "subscribe":
                return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.pubsub.unsubscribe(self.channel)
        finally:
            await self.pubsub.aclose()

    async def wait(self, command_id: str, timeout_s: float) -> WorkflowEvent | None:
        """The event answering `command_id`, or None at the deadline."""
        deadline = time.monotonic() + timeout_s
        next_check = time.monotonic() + RECHECK_INTERVAL_S
        while (remaining := deadline - time.monotonic()) > 0:
            message = await self.pubsub.get_message(
                ignore_subscribe_messages=True,
                timeout=min(remaining, max(0.0, next_check - time.monotonic())),
            )
            if message is not None and message["type"] == "message":
                try:
                    event = msgspec.json.decode(message["data"], type=WorkflowEvent)
                except msgspec.DecodeError:
                    continue
                if answers(event, command_id):
                    return event
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + RECHECK_INTERVAL_S
                stored = await last_state(self.redis, self.tenant, self.workflow_id)
                if stored is not None and answers(stored, command_id):
                    return stored
        stored = await last_state(self.redis, self.tenant, self.workflow_id)
        if stored is not None and answers(stored, command_id):
            return stored
        return None
