"""The gateway's clients, created in the lifespan and handed to controllers by dependency injection."""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from redis.asyncio import Redis
from temporalio.client import Client as TemporalClient

from drift_runtime.ssrf import Guard


@dataclass(slots=True)
class Runtime:
    nats: NatsClient
    js: JetStreamContext
    redis: Redis
    temporal: TemporalClient
    guard: Guard

    async def ready(self) -> bool:
        if not self.nats.is_connected or not await self.redis.ping():
            return False
        return bool(await self.temporal.service_client.check_health())
