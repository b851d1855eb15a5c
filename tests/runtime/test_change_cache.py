"""drift_runtime.change_cache: values served and kept only while the dsl-store's change events are heard."""

from __future__ import annotations

import asyncio

from nats.aio.msg import Msg

from drift_cli.servers import InfraStack
from drift_runtime import messaging
from drift_runtime.change_cache import ChangeCache, Lru
from drift_schema import subjects


def test_lru_forgets_the_least_recently_used() -> None:
    """The LRU keeps at most its capacity, evicting what was used longest ago."""
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == (1, None, 3, 2)


def test_nothing_is_served_or_kept_unless_events_are_heard() -> None:
    """Before `heard` and after `deaf` a put is refused and a find misses; `heard` again starts from empty."""
    cache: ChangeCache[str, int] = ChangeCache(8)
    assert not cache.put("a", 1, cache.generation)
    cache.heard()
    assert cache.put("a", 1, cache.generation)
    found = cache.find("a")
    assert found is not None and found.value == 1
    cache.deaf()
    assert cache.find("a") is None
    cache.heard()
    assert cache.find("a") is None


def test_a_change_during_a_read_keeps_the_value_out() -> None:
    """A value read across a drop (of any key) is not kept; one read after it is."""
    cache: ChangeCache[tuple[str, str], str | None] = ChangeCache(8)
    cache.heard()
    before = cache.generation
    cache.drop(("acme", "other"))
    assert not cache.put(("acme", "flow"), "v1", before)
    assert cache.find(("acme", "flow")) is None
    assert cache.put(("acme", "flow"), None, cache.generation)
    hit = cache.find(("acme", "flow"))
    assert hit is not None and hit.value is None, "a kept None is a hit, not a miss"
    cache.put(("globex", "flow"), "g", cache.generation)
    cache.drop_where(lambda key: key[0] == "acme")
    assert cache.find(("acme", "flow")) is None and cache.find(("globex", "flow")) is not None


def test_entries_expire_after_their_time_to_live() -> None:
    """With a time to live, an entry older than it misses (an event that was never published harms for so long)."""
    now = [1000.0]
    cache: ChangeCache[str, int] = ChangeCache(8, ttl_s=30.0, clock=lambda: now[0])
    cache.heard()
    cache.put("a", 1, cache.generation)
    now[0] += 29.0
    assert cache.find("a") is not None
    now[0] += 2.0
    assert cache.find("a") is None and len(cache) == 0


async def test_listening_on_a_shared_connection(infra: InfraStack) -> None:
    """`listen` hears change events on a connection it does not own, and stops serving once it is closed."""
    nc = await messaging.connect(infra.nats_url, name="change-cache-tests")
    cache: ChangeCache[tuple[str, str], str] = ChangeCache(8)
    changed = asyncio.Event()

    async def on_change(msg: Msg) -> None:
        tenant = subjects.tenant_of(msg.subject)
        cache.drop_where(lambda key: key[0] == tenant)
        changed.set()

    try:
        await cache.listen(nc, on_change)
        assert cache.live()
        cache.put(("acme", "flow"), "v1", cache.generation)
        await nc.publish(subjects.dsl_events("acme", "workflow", "flow"), b"{}")
        async with asyncio.timeout(5):
            await changed.wait()
        assert cache.find(("acme", "flow")) is None
        cache.put(("acme", "flow"), "v2", cache.generation)
    finally:
        await nc.close()
    assert not cache.live() and cache.find(("acme", "flow")) is None
