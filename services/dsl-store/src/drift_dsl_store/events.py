"""Definition-change events on `drift.<tenant>.evt.dsl.<kind>.<id>`, so caches can invalidate.

`kind` is `node`, `workflow` or `enums` (then `id` is the enum key).

Publishing is best effort: the store is the truth, and a missed event only
delays an invalidation, so a NATS outage never fails a definition change.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from typing import Protocol

import msgspec
import structlog
from nats.aio.client import Client as NatsClient
from prometheus_client import Counter

from drift_runtime.messaging import connect, ensure_streams, publish
from drift_schema import subjects

log = structlog.get_logger("drift.dsl_store.events")

PUBLISH_TIMEOUT_S = 2.0
CHANGES = Counter("drift_dsl_changes_total", "Definition and enum changes by kind and change", ["kind", "change"])


class Change(enum.StrEnum):
    PUBLISHED = "published"
    ACTIVATED = "activated"
    UPDATED = "updated"
    DELETED = "deleted"


ENUMS_KIND = "enums"
"""The `kind` of enum-store changes: `drift.<tenant>.evt.dsl.enums.<key>`, with `id` the key and no version."""


class DefinitionChanged(msgspec.Struct, frozen=True):
    """The event body: which definition (or enum key) changed, to which version, and how."""

    tenant: str
    kind: str
    id: str
    version: str | None
    change: Change


def message_id(event: DefinitionChanged, revision: str) -> str:
    """The `Nats-Msg-Id` of an event.

    A published number happens once, so `tenant:kind:id:published:N` is unique.
    Updates (always `SNAPSHOT`) and activations (a rollback re-activates an
    older N) repeat, so their id also carries the revision time of the change,
    or JetStream's duplicate window would swallow a quick second change.
    """
    base = f"{event.tenant}:{event.kind}:{event.id}:{event.change}:{event.version or ''}"
    return base if event.change is Change.PUBLISHED else f"{base}:{revision}"


class ChangePublisher(Protocol):
    @property
    def ready(self) -> bool:
        """False while a configured broker is unreachable."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def changed(self, event: DefinitionChanged, revision: str) -> None:
        """Announce a change; never raises."""


class NoChangePublisher:
    """Used when `DRIFT_NATS_URL` is unset: changes are not announced."""

    ready = True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def changed(self, event: DefinitionChanged, revision: str) -> None:
        return None


class BackgroundNats:
    """A NATS connection opened in the background, so the service serves while NATS is away.

    `start` keeps calling `_open` (0.5 s doubling to 10 s between attempts, each failure logged
    as `_failed_event` on `_log`) until it answers a client, then calls `_up`; `close` stops
    the attempts and drains the client.
    """

    _task_name: str
    _failed_event: str
    _log: structlog.stdlib.BoundLogger

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: NatsClient | None = None
        self._connecting: asyncio.Task[None] | None = None

    async def _open(self) -> NatsClient:
        """One connection attempt: a client ready to use, or an exception."""
        raise NotImplementedError

    def _up(self) -> None:
        """Called once, when the first connection is up."""

    async def start(self) -> None:
        self._connecting = asyncio.create_task(self._connect(), name=self._task_name)

    async def _connect(self) -> None:
        delay = 0.5
        while True:
            try:
                client = await self._open()
            except Exception as error:
                self._log.warning(self._failed_event, error=str(error), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._client = client
            self._up()
            return

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.drain()


class NatsChangePublisher(BackgroundNats):
    """Publishes to JetStream; connects in the background so the store serves while NATS is away."""

    _task_name = "dsl-store-nats-connect"
    _failed_event = "dsl.nats_connect_failed"
    _log = log

    def __init__(self, url: str, stream_replicas: int = 1) -> None:
        super().__init__(url)
        self._stream_replicas = stream_replicas
        self.connected = asyncio.Event()
        """Set once the first connection is up and the streams exist."""

    @property
    def ready(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def _open(self) -> NatsClient:
        client = await connect(self._url, "drift-dsl-store")
        await ensure_streams(client.jetstream(), self._stream_replicas)
        return client

    def _up(self) -> None:
        self.connected.set()
        log.info("dsl.nats_connected")

    async def changed(self, event: DefinitionChanged, revision: str) -> None:
        client = self._client
        fields = {"kind": event.kind, "id": event.id, "version": event.version, "change": str(event.change)}
        if client is None or not client.is_connected:
            log.warning("dsl.change_not_announced", reason="nats unavailable", **fields)
            return
        try:
            subject = subjects.dsl_events(event.tenant, event.kind, event.id)
            await publish(client.jetstream(), subject, event, message_id(event, revision), timeout_s=PUBLISH_TIMEOUT_S)
        except Exception as error:
            log.warning("dsl.change_not_announced", reason=str(error), **fields)
            return
        log.debug("dsl.change_announced", **fields)


async def announce(changes: ChangePublisher, event: DefinitionChanged) -> None:
    """Count a change and announce it; the revision (now, in ns) keeps repeated changes apart."""
    CHANGES.labels(kind=event.kind, change=str(event.change)).inc()
    await changes.changed(event, revision=str(time.time_ns()))
