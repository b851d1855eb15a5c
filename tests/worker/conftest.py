"""Worker-level fixtures: an in-process worker on a unique task queue against the session's Temporal and NATS.

Runs get their `RunInput` directly (nodes inlined), as the dispatcher would start them.
HTTP nodes call a loopback stub; only `localhost` (by name) is allowed past the SSRF guard,
so `127.0.0.1` and its numeric disguises stay refused for the guard tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from nats.aio.client import Client as NatsClient
from temporalio.client import Client

from drift_cli.servers import InfraStack
from drift_runtime import messaging
from drift_runtime.temporal import connect_temporal
from worker.worker_support import EventTap, Runner, Stub, running_worker, serving, tapped


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_client(infra: InfraStack) -> Client:
    return await connect_temporal(infra.temporal_address, "default")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def nats_client(infra: InfraStack) -> AsyncIterator[NatsClient]:
    nc = await messaging.connect(infra.nats_url, name="worker-tests")
    await messaging.ensure_streams(nc.jetstream())
    yield nc
    await nc.drain()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stub() -> AsyncIterator[Stub]:
    async with serving(Stub()) as running:
        yield running


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def runner(temporal_client: Client, nats_client: NatsClient) -> AsyncIterator[Runner]:
    """A worker for the whole session on its own task queue, with the test token provider."""
    async with running_worker(temporal_client, nats_client, "worker-tests") as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def tap(nats_client: NatsClient) -> AsyncIterator[EventTap]:
    """Node and status events of tenant `acme`, collected while the test runs."""
    async with tapped(nats_client) as running:
        yield running
