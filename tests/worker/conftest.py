"""Worker-level fixtures: an in-process worker on a unique task queue against the session's Temporal and NATS.

Runs get their `RunInput` directly (nodes inlined), as the dispatcher would start them.
HTTP nodes call a loopback stub; only `localhost` (by name) is allowed past the SSRF guard,
so `127.0.0.1` and its numeric disguises stay refused for the guard tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from nats.aio.client import Client as NatsClient
from temporalio.client import Client

from drift_cli.servers import InfraStack
from drift_runtime import messaging
from drift_runtime.temporal import connect_temporal
from drift_worker.app import build_worker
from drift_worker.ssrf import Guard, guarded_client
from worker.worker_support import EventTap, Runner, StaticTokens, Stub, serving, tapped, worker_settings


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
    task_queue = f"worker-tests-{uuid.uuid4().hex[:8]}"
    settings = worker_settings(task_queue)
    async with guarded_client(Guard(settings.http_allow_hosts)) as http:
        worker = build_worker(temporal_client, nats_client.jetstream(), http, settings, [StaticTokens()])
        async with worker:
            yield Runner(temporal_client, task_queue)


@pytest_asyncio.fixture(loop_scope="session")
async def tap(nats_client: NatsClient) -> AsyncIterator[EventTap]:
    """Node and status events of tenant `acme`, collected while the test runs."""
    async with tapped(nats_client) as running:
        yield running
