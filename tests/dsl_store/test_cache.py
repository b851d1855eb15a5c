"""Caching: published versions kept forever (memory, Redis), pointers dropped by NATS change events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drift_cli.servers import InfraStack
from drift_dsl_store.cache import CachingStore, RedisVersions, store_namespace
from drift_dsl_store.store import DefinitionKey, Kind, SqlDefinitionStore, StoredDefinition
from dsl_store.helpers import ACME, publish_nodes, two_instances, two_step_workflow

KEY = DefinitionKey("acme", Kind.WORKFLOW, "flow")


class CountingStore(SqlDefinitionStore):
    """Counts reads that reach the database; can hold one read until released."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads = 0
        self.hold: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def get(self, key: DefinitionKey, version: str) -> StoredDefinition | None:
        self.reads += 1
        stored = await super().get(key, version)
        if self.hold is not None:
            self.reading.set()
            await self.hold.wait()
        return stored


@pytest.fixture
async def counting(tmp_path: Path) -> AsyncIterator[CountingStore]:
    store = CountingStore(f"sqlite+aiosqlite:///{tmp_path / 'cache.db'}")
    await store.start()
    await store.create(KEY, b'{"version":"SNAPSHOT"}')
    for _ in range(2):
        await store.publish(KEY, lambda v: f'{{"version":"{v}"}}'.encode(), activate_if_none=True)
    yield store
    await store.close()


async def test_published_versions_are_read_once(counting: CountingStore) -> None:
    """A published number is read from the database once, then served from memory (even without events)."""
    cache = CachingStore(counting)
    first = await cache.get(KEY, "1")
    again = await cache.get(KEY, "1")
    assert first is not None and again == first
    assert counting.reads == 1


async def test_pointers_are_cached_only_while_events_are_heard(counting: CountingStore) -> None:
    """Without an event subscription every pointer read goes to the database; with one, the first read does."""
    cache = CachingStore(counting)
    for _ in range(2):
        assert (await cache.get(KEY, "ACTIVE")) is not None
    assert counting.reads == 2
    cache.pointers_on()
    for _ in range(3):
        active = await cache.get(KEY, "ACTIVE")
        assert active is not None and active.version == "1"
    assert counting.reads == 3
    await cache.activate(KEY, 2)  # a local write drops the pointer at once
    active = await cache.get(KEY, "ACTIVE")
    assert active is not None and active.version == "2"
    cache.invalidate("acme", "workflow", "flow")
    await cache.get(KEY, "ACTIVE")
    assert counting.reads == 5
    cache.pointers_off()
    await cache.get(KEY, "ACTIVE")
    assert counting.reads == 6


async def test_an_invalidation_during_a_read_is_not_lost(counting: CountingStore) -> None:
    """A pointer read that overlaps an invalidation is answered but not cached, since it may be stale."""
    cache = CachingStore(counting)
    cache.pointers_on()
    counting.hold = asyncio.Event()
    reading = asyncio.create_task(cache.get(KEY, "ACTIVE"))
    await counting.reading.wait()
    cache.invalidate("acme", "workflow", "flow")
    counting.hold.set()
    assert (await reading) is not None
    counting.hold = None
    await cache.get(KEY, "ACTIVE")
    assert counting.reads == 2


async def test_redis_shares_published_versions_between_instances(counting: CountingStore, infra: InfraStack) -> None:
    """A version one instance read is served to another from Redis without touching the database."""
    namespace = store_namespace(f"sqlite+aiosqlite:///{counting.engine.url.database}")
    first = CachingStore(counting, RedisVersions(infra.redis_url, namespace))
    second = CachingStore(counting, RedisVersions(infra.redis_url, namespace))
    try:
        stored = await first.get(KEY, "2")
        assert counting.reads == 1
        shared = await second.get(KEY, "2")
        assert counting.reads == 1
        assert shared is not None and stored is not None
        assert (shared.body, shared.version, shared.created_at) == (stored.body, "2", stored.created_at)
    finally:
        assert first.redis is not None and second.redis is not None
        await first.redis.close()
        await second.redis.close()


async def test_redis_outage_is_a_miss(counting: CountingStore) -> None:
    """With Redis unreachable, reads still answer from the database."""
    cache = CachingStore(counting, RedisVersions("redis://127.0.0.1:1/0", "x"))
    try:
        stored = await cache.get(KEY, "1")
        assert stored is not None and stored.version == "1"
    finally:
        assert cache.redis is not None
        await cache.redis.close()


async def test_activation_reaches_another_instance_within_a_second(tmp_path: Path, infra: InfraStack) -> None:
    """Two instances share a database, NATS and Redis: B's cached ACTIVE follows A's activation within a second."""
    async with two_instances(tmp_path, infra) as (_, a, b, cache_b):
        await publish_nodes(a)  # type: ignore[arg-type]
        await a.post("/workflowDefinition", json=two_step_workflow(comment="v1"), headers=ACME)
        await a.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)
        await a.put("/workflowDefinition", json=two_step_workflow(comment="v2"), headers=ACME)
        await a.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)

        active = await b.get("/workflowDefinition/flow", params={"version": "ACTIVE"}, headers=ACME)
        assert active.json()["comment"] == "v1"
        assert cache_b.pointers_live

        heard = asyncio.Event()
        cache_b.listeners.append(
            lambda tenant, kind, name: heard.set() if (kind, name) == ("workflow", "flow") else None
        )
        activated = await a.post("/workflowDefinition/flow/activate", params={"version": "2"}, headers=ACME)
        assert activated.status_code == 200
        answered = time.monotonic()
        async with asyncio.timeout(1):
            await heard.wait()
        active = await b.get("/workflowDefinition/flow", params={"version": "ACTIVE"}, headers=ACME)
        assert active.json()["comment"] == "v2"
        assert time.monotonic() - answered < 1.0
