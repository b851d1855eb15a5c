"""The gateway's clients, created in the lifespan and handed to controllers by dependency injection."""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from redis.asyncio import Redis
from temporalio.client import Client as TemporalClient

from drift_client.store import SERVICE_TIMEOUT, StoreClient
from drift_gateway.channels import RunChannels
from drift_gateway.limits import Fairness
from drift_gateway.run_state import RedisStates, RunStates, TemporalRuns
from drift_runtime.ssrf import Guard


@dataclass(slots=True)
class Runtime:
    nats: NatsClient
    js: JetStreamContext
    redis: Redis
    temporal: TemporalClient
    guard: Guard
    store: StoreClient | None = None
    """The dsl-store with the service token: the run-context store, for runs Temporal no longer knows."""
    fairness: Fairness = field(default_factory=Fairness)
    """Per-tenant limits on starts per second and open sync calls (this process's share)."""
    channels: RunChannels | None = None
    """Sync calls' subscriptions to run channels, over one connection; None: a connection per call."""

    def run_states(self) -> RunStates:
        """`GET /v3/workflow/{id}`'s policy over this process's Temporal, Redis and run-context store."""
        return RunStates(TemporalRuns(self.temporal), RedisStates(self.redis), self.store)

    async def ready(self) -> bool:
        if not self.nats.is_connected or not await self.redis.ping():
            return False
        return bool(await self.temporal.service_client.check_health())


def run_store_client(base_url: str, service_token: str) -> StoreClient:
    """The dsl-store, authenticated with the service token (the tenant goes in `X-Drift-Tenant` per call)."""
    return StoreClient(base_url, service_token, timeout=SERVICE_TIMEOUT)
