"""A cache trusted only while the dsl-store's change events (`drift.*.evt.dsl.>`) are heard.

The dsl-store keeps definitions' pointers (`SNAPSHOT`, `LATEST`, `ACTIVE`) in process, the dispatcher
keeps the pinned definitions, enums and traffic splits it read from the dsl-store; both drop an entry
when a change event says it may be stale. The rules that make that safe are the same, and live here:

- nothing is served or kept while events may be missed (not yet subscribed, disconnected);
- hearing events again starts from empty, since what was published meanwhile is unknown;
- a value read while a change arrived is answered but not kept, since the change may have been about
  it: take `generation` before reading the source and hand it to `put`;
- an optional time to live bounds the harm of an event that was never published.

Whether events are heard is told either by the owner of the subscription's connection (`heard` and
`deaf` from its reconnect and disconnect callbacks) or, on a connection shared with other work, read
from the connection itself (`follow`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from drift_schema import subjects

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """A bounded mapping that forgets the least recently used entry first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value, now the most recently used; None when absent."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep `value`, forgetting the least recently used entry when over capacity."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        """Forget `key` (nothing when absent)."""
        self._entries.pop(key, None)

    def pop_where(self, doomed: Callable[[K], bool]) -> None:
        """Drop every entry whose key `doomed` selects (a full pass: for rare events such as deletes)."""
        for key in [key for key in self._entries if doomed(key)]:
            del self._entries[key]

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class Cached(Generic[V]):
    """A hit: the value kept (which may itself be None, e.g. "this workflow has no traffic split")."""

    value: V


class ChangeCache(Generic[K, V]):
    """A bounded LRU of values that change events can make stale (see the module docstring)."""

    def __init__(self, capacity: int, ttl_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: Lru[K, tuple[float, V]] = Lru(capacity)
        self._generation = 0
        self._heard = False
        self._connection: NatsClient | None = None
        self._reconnects = 0

    # -- whether change events are heard ----------------------------------------------------------------

    def heard(self) -> None:
        """Events are heard (again): cache from empty, since some may have been missed."""
        self._forget_all()
        self._heard = True

    def deaf(self) -> None:
        """Events may be missed from now on: serve and keep nothing."""
        self._forget_all()
        self._heard = False

    def follow(self, connection: NatsClient) -> None:
        """Events are heard on `connection`, which others own: live while it is connected, emptied by a reconnect."""
        self._connection = connection
        self._reconnects = connection.stats["reconnects"]
        self.heard()

    async def listen(self, connection: NatsClient, on_change: Callable[[Msg], Awaitable[None]]) -> None:
        """Subscribe `on_change` to the dsl-store's change events on `connection`, then `follow` it."""
        await connection.subscribe(subjects.DSL_EVENT_SUBJECTS, cb=on_change)
        self.follow(connection)

    def live(self) -> bool:
        """Whether events are heard now (so entries may be served and kept)."""
        if not self._heard:
            return False
        connection = self._connection
        if connection is None:
            return True
        if not connection.is_connected:
            return False
        reconnects = connection.stats["reconnects"]
        if reconnects != self._reconnects:
            # Reconnected since the last look: events published meanwhile were missed.
            self._reconnects = reconnects
            self._forget_all()
        return True

    # -- entries ----------------------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Changes heard so far; read it before reading the source, and hand it to `put`."""
        return self._generation

    def find(self, key: K) -> Cached[V] | None:
        """The kept value while events are heard and it has not expired; None otherwise."""
        if not self.live():
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at < self._clock():
            self._entries.pop(key)
            return None
        return Cached(value)

    def put(self, key: K, value: V, generation: int) -> bool:
        """Keep `value` unless events are not heard or a change came since `generation` was read."""
        if not self.live() or generation != self._generation:
            return False
        expires_at = self._clock() + self.ttl_s if self.ttl_s is not None else float("inf")
        self._entries.put(key, (expires_at, value))
        return True

    def drop(self, *keys: K) -> None:
        """A change: forget these keys, and keep nothing read before it."""
        self._generation += 1
        for key in keys:
            self._entries.pop(key)

    def drop_where(self, doomed: Callable[[K], bool]) -> None:
        """A change: forget every key `doomed` selects, and keep nothing read before it."""
        self._generation += 1
        self._entries.pop_where(doomed)

    def _forget_all(self) -> None:
        self._generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
