"""The dispatcher on servers of its own: real NATS (JetStream) and Temporal, a worker, a stand-in dsl-store.

Its own servers because the e2e platform's dispatcher would otherwise consume these tests' commands too.
Commands are handled one at a time (one partition, concurrency 1), in stream order, so a later "marker"
command's answer proves every earlier command was handled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from dispatcher.support import MAX_RUNNING, Stack, StubDefinitions, servers
from drift_dispatcher.commands import CommandDispatcher
from drift_dispatcher.partitions import PartitionGroup
from drift_dispatcher.tenancy import RunLimiter, TenantDuplicates
from drift_runtime import messaging


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """NATS, Temporal, a worker and a dispatcher (tenant limit `MAX_RUNNING`) of this package's own."""
    async with servers(tmp_path_factory.mktemp("dispatcher-stack")) as found:
        duplicates = TenantDuplicates(await messaging.command_ids(found.js))
        dispatcher = CommandDispatcher(
            found.client,
            found.js,
            StubDefinitions(),  # type: ignore[arg-type]
            found.task_queue,
            duplicates=duplicates,
            limiter=RunLimiter(found.client, MAX_RUNNING),
        )
        group = PartitionGroup(found.js, dispatcher.handle, partitions=1, concurrency=1)
        stop = asyncio.Event()
        consuming = asyncio.create_task(group.run(stop))
        try:
            yield Stack(found.nc, found.js, found.client, found.events, duplicates, found.task_queue)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await consuming
