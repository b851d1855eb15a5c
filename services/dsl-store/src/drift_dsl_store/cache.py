"""Caching of definitions in front of any store.

Published versions never change, so they are cached without expiry: in
process (a bounded LRU) and, when `DRIFT_REDIS_URL` is set, in Redis, shared
by every instance. Pointers (`SNAPSHOT`, `LATEST`, `ACTIVE`) do change: they
are cached in process only, and only while this instance hears the
definition-change events on NATS (`drift.*.evt.dsl.>`), which drop them. A
disconnect stops pointer caching (events may be missed) and a reconnect starts
it again from empty, so a pointer is never served staler than the event
delivery delay: an activation takes effect for the next start everywhere
within milliseconds.

A delete is the one change to published versions: the deleting instance drops
them from its LRU and from Redis, and every instance, when it hears the `deleted`
event (which carries the highest number), drops them from its LRU and then again
from Redis, so a read racing the delete cannot leave a stale copy behind (a read
under way when the event arrives is not cached: the generation check). Numbers are
never reused after a delete (see the store), so even a copy left by an instance
that missed the event only ever holds the body that number had.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

import msgspec
import nats
import sqlalchemy as sa
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from prometheus_client import Counter
from redis.asyncio import Redis

from drift_dsl_store.events import ENUMS_KIND, BackgroundNats, Change, DefinitionChanged
from drift_dsl_store.store import (
    BundleWrite,
    BundleWritten,
    DefinitionKey,
    Definitions,
    Kind,
    Published,
    RefersTo,
    StoredDefinition,
)
from drift_dsl_store.store.base import RenderBody
from drift_runtime.change_cache import ChangeCache, Lru
from drift_runtime.messaging import SERVICE_INBOX_PREFIX, split_credentials
from drift_runtime.redis_client import connect_redis
from drift_schema import subjects
from drift_schema.workflow import SNAPSHOT, VERSION_POINTERS, is_published_version

log = structlog.get_logger("drift.dsl_store.cache")

T = TypeVar("T")

DEFAULT_PUBLISHED_ENTRIES = 4096
DEFAULT_POINTER_ENTRIES = 16384
REDIS_TIMEOUT_S = 0.5
MAX_FORGOTTEN = 100_000
"""Versions a deleted-definition event makes an instance drop from Redis at most (a bound on a forged event)."""
LOOKUPS = Counter("drift_dsl_cache_lookups_total", "Definition cache lookups by layer and result", ["layer", "result"])

Invalidated = Callable[[str, str, str], None]
"""Called with (tenant, kind, id) whenever the pointers of a definition are dropped."""


class _Cached(msgspec.Struct, frozen=True, array_like=True):
    """A published version as Redis holds it."""

    body: bytes
    created_at: datetime
    updated_at: datetime


def store_namespace(store_url: str) -> str:
    """A short name for the database behind `store_url`, so that stores sharing a Redis never mix entries."""
    try:
        shown = sa.make_url(store_url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        shown = store_url.split("?", 1)[0]
    return hashlib.sha256(shown.encode()).hexdigest()[:12]


class RedisVersions:
    """Published versions in Redis, best effort: a Redis fault is logged and treated as a miss."""

    def __init__(self, url: str, namespace: str) -> None:
        self._redis: Redis = connect_redis(url, socket_timeout=REDIS_TIMEOUT_S, connect_timeout=REDIS_TIMEOUT_S)
        self._namespace = namespace

    def _key(self, key: DefinitionKey, version: str) -> str:
        return f"drift:dsl:{self._namespace}:{key.tenant}:{key.kind}:{key.id}:{version}"

    async def get(self, key: DefinitionKey, version: str) -> StoredDefinition | None:
        try:
            raw = await self._redis.get(self._key(key, version))
        except Exception as error:
            log.warning("dsl.cache_redis_failed", operation="get", error=str(error))
            return None
        if raw is None:
            return None
        # The client answers bytes (no decode_responses); the str case only exists in its type hints.
        cached = msgspec.msgpack.decode(raw.encode() if isinstance(raw, str) else raw, type=_Cached)
        return StoredDefinition(key, version, cached.body, cached.created_at, cached.updated_at)

    async def put(self, stored: StoredDefinition) -> None:
        value = msgspec.msgpack.encode(_Cached(stored.body, stored.created_at, stored.updated_at))
        try:
            # No expiry: a published version is immutable. Redis's maxmemory policy bounds the total.
            await self._redis.set(self._key(stored.key, stored.version), value)
        except Exception as error:
            log.warning("dsl.cache_redis_failed", operation="set", error=str(error))

    async def forget(self, key: DefinitionKey, latest: int) -> None:
        """Drop published versions 1..latest of a deleted definition."""
        names = [self._key(key, str(number)) for number in range(1, latest + 1)]
        try:
            for start in range(0, len(names), 500):
                await self._redis.delete(*names[start : start + 500])
        except Exception as error:
            log.warning("dsl.cache_redis_failed", operation="delete", error=str(error))

    async def close(self) -> None:
        await self._redis.aclose()


class CachingStore:
    """The `Definitions` of another store with their reads cached (see the module docstring).

    Only definitions pass through here: enums, run contexts and the store's lifecycle are
    the backend's own, and the app uses the backend for them.
    """

    def __init__(
        self,
        inner: Definitions,
        redis: RedisVersions | None = None,
        published_entries: int = DEFAULT_PUBLISHED_ENTRIES,
        pointer_entries: int = DEFAULT_POINTER_ENTRIES,
    ) -> None:
        self.inner = inner
        self.redis = redis
        self._published: Lru[tuple[DefinitionKey, str], StoredDefinition] = Lru(published_entries)
        # Pointers change: kept only while invalidation events are heard.
        self._pointers: ChangeCache[tuple[DefinitionKey, str], StoredDefinition] = ChangeCache(pointer_entries)
        self.listeners: list[Invalidated] = []

    # -- invalidation --------------------------------------------------------------------------------

    def invalidate(self, tenant: str, kind: str, definition_id: str) -> None:
        """Drop the pointers of one definition (an event, or a write of this instance)."""
        if kind in (Kind.NODE, Kind.WORKFLOW):
            key = DefinitionKey(tenant, Kind(kind), definition_id)
            self._pointers.drop(*((key, pointer) for pointer in VERSION_POINTERS))
        for listener in self.listeners:
            listener(tenant, kind, definition_id)

    def forget(self, tenant: str, kind: str, definition_id: str) -> None:
        """A definition was deleted: drop its published versions from the LRU too (its pointers go as well)."""
        if kind in (Kind.NODE, Kind.WORKFLOW):
            key = DefinitionKey(tenant, Kind(kind), definition_id)
            self._published.pop_where(lambda entry: entry[0] == key)
        self.invalidate(tenant, kind, definition_id)

    @property
    def pointers_live(self) -> bool:
        """True while invalidation events are heard; only then are pointers cached."""
        return self._pointers.live()

    def pointers_on(self) -> None:
        """Events are heard (again): cache pointers, from empty since events may have been missed."""
        self._pointers.heard()

    def pointers_off(self) -> None:
        """Events may be missed from now on: stop caching pointers."""
        self._pointers.deaf()

    # -- reads ---------------------------------------------------------------------------------------

    async def get(self, key: DefinitionKey, version: str) -> StoredDefinition | None:
        if is_published_version(version):
            return await self._published_version(key, str(int(version)))
        if version not in VERSION_POINTERS:
            return await self.inner.get(key, version)
        cached = self._pointers.find((key, version))
        if cached is not None:
            LOOKUPS.labels(layer="pointer", result="hit").inc()
            return cached.value
        LOOKUPS.labels(layer="pointer", result="miss").inc()
        generation = self._pointers.generation
        stored = await self.inner.get(key, version)
        if stored is None:
            return None
        if stored.version != SNAPSHOT:
            self._published.put((key, stored.version), stored)
        # Kept only when no invalidation came while the store was read: it could have been about this value.
        self._pointers.put((key, version), stored, generation)
        return stored

    async def _published_version(self, key: DefinitionKey, version: str) -> StoredDefinition | None:
        cached = self._published.get((key, version))
        if cached is not None:
            LOOKUPS.labels(layer="memory", result="hit").inc()
            return cached
        if self.redis is not None:
            cached = await self.redis.get(key, version)
            if cached is not None:
                LOOKUPS.labels(layer="redis", result="hit").inc()
                self._published.put((key, version), cached)
                return cached
        LOOKUPS.labels(layer="published", result="miss").inc()
        generation = self._pointers.generation
        stored = await self.inner.get(key, version)
        # Not kept when a change came meanwhile: it may have been this definition's delete.
        if stored is not None and generation == self._pointers.generation:
            self._published.put((key, version), stored)
            if self.redis is not None:
                await self.redis.put(stored)
        return stored

    # -- writes: delegate, then drop what this instance cached about the key ----------------------------

    async def _invalidating(self, key: DefinitionKey, write: Awaitable[T]) -> T:
        """`write`'s outcome; whatever it is, this instance's cached pointers of `key` are dropped after it."""
        try:
            return await write
        finally:
            self.invalidate(key.tenant, str(key.kind), key.id)

    async def create(self, key: DefinitionKey, body: bytes) -> StoredDefinition:
        return await self._invalidating(key, self.inner.create(key, body))

    async def replace_snapshot(self, key: DefinitionKey, body: bytes) -> StoredDefinition:
        return await self._invalidating(key, self.inner.replace_snapshot(key, body))

    async def publish(
        self, key: DefinitionKey, render: RenderBody, activate_if_none: bool, requires: Sequence[DefinitionKey] = ()
    ) -> Published:
        published = await self._invalidating(
            key,
            self.inner.publish(key, render, activate_if_none, requires)
            if requires
            else self.inner.publish(key, render, activate_if_none),
        )
        self._published.put((key, published.definition.version), published.definition)
        return published

    async def activate(self, key: DefinitionKey, version: int) -> bool:
        return await self._invalidating(key, self.inner.activate(key, version))

    async def set_traffic(self, key: DefinitionKey, weights: Sequence[tuple[int, int]]) -> bool:
        return await self._invalidating(key, self.inner.set_traffic(key, weights))

    async def delete(self, key: DefinitionKey, refers_to: RefersTo | None = None) -> int | None:
        latest = await self._invalidating(key, self.inner.delete(key, refers_to))
        if latest is not None:
            self.forget(key.tenant, str(key.kind), key.id)
            if self.redis is not None:
                await self.redis.forget(key, latest)
        return latest

    async def apply(self, writes: Sequence[BundleWrite]) -> list[BundleWritten]:
        try:
            return await self.inner.apply(writes)
        finally:
            for write in writes:
                self.invalidate(write.key.tenant, str(write.key.kind), write.key.id)

    async def close(self) -> None:
        """Close the Redis connection (the backend is the app's to close)."""
        if self.redis is not None:
            await self.redis.close()


class ChangeListener(BackgroundNats):
    """Hears definition-change events on core NATS and invalidates the cache's pointers.

    Core NATS, not a JetStream consumer: every instance needs every event,
    nothing needs replaying (a reconnect empties the pointer cache instead),
    and the events' stream captures the same subjects for anyone who does.
    """

    _task_name = "dsl-store-cache-listener"
    _failed_event = "dsl.cache_listener_connect_failed"
    _log = log

    def __init__(self, url: str, cache: CachingStore) -> None:
        super().__init__(url)
        self._cache = cache
        self.subscribed = asyncio.Event()

    async def _open(self) -> NatsClient:
        server = split_credentials(self._url)  # nats-py would send a percent-encoded password as written
        client = await nats.connect(
            server.url,
            user=server.user,
            password=server.password,
            token=server.token,
            name="drift-dsl-store-cache",
            inbox_prefix=SERVICE_INBOX_PREFIX,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
        )
        await client.subscribe(subjects.DSL_EVENT_SUBJECTS, cb=self._on_change)
        await client.flush()
        return client

    def _up(self) -> None:
        self._cache.pointers_on()
        self.subscribed.set()
        log.info("dsl.cache_listener_subscribed", subject=subjects.DSL_EVENT_SUBJECTS)

    async def _disconnected(self) -> None:
        self._cache.pointers_off()
        log.warning("dsl.cache_listener_disconnected")

    async def _reconnected(self) -> None:
        # The client resubscribed before this callback; what was published meanwhile is unknown, so start empty.
        self._cache.pointers_on()
        log.info("dsl.cache_listener_reconnected")

    async def _on_change(self, msg: Msg) -> None:
        try:
            event = msgspec.json.decode(msg.data, type=DefinitionChanged)
        except msgspec.DecodeError as error:
            log.warning("dsl.cache_event_undecodable", subject=msg.subject, error=str(error))
            return
        if event.kind != ENUMS_KIND:
            log.debug("dsl.cache_invalidated", kind=event.kind, id=event.id, change=str(event.change))
        if event.change is Change.DELETED:
            self._cache.forget(event.tenant, event.kind, event.id)
            # Again from every instance, after its own reads were told (forget): a read racing the delete on any
            # instance either put its stale copy before this, or is kept from putting it by the generation check.
            latest = event.version or ""
            if self._cache.redis is not None and event.kind in (Kind.NODE, Kind.WORKFLOW) and latest.isdigit():
                key = DefinitionKey(event.tenant, Kind(event.kind), event.id)
                await self._cache.redis.forget(key, min(int(latest), MAX_FORGOTTEN))
        else:
            self._cache.invalidate(event.tenant, event.kind, event.id)

    async def close(self) -> None:
        self._cache.pointers_off()
        await super().close()


def caching(store: Definitions, redis_url: str | None, store_url: str) -> CachingStore:
    """`store` behind the caches; Redis only when `redis_url` is set."""
    redis = RedisVersions(redis_url, store_namespace(store_url)) if redis_url else None
    return CachingStore(store, redis)
