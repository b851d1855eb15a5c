"""Pinning: the dispatcher resolves a run's definitions from the dsl-store once, at start.

What it read is kept in process while the definition-change events of the dsl-store
(`drift.*.evt.dsl.>`) are heard: any event of a tenant drops all of that tenant's entries (an
enriched workflow depends on its nodes' pointers too), a NATS disconnect stops caching and a
reconnect starts again from empty, and every entry expires after CACHE_TTL_S in case an event
was never published. So an activation reaches the next start within the event delivery delay,
as the dsl-store's own pointer cache does, and a start costs no dsl-store round trip.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from drift_client import DriftError, StoreClient
from drift_client.store import SERVICE_TIMEOUT
from drift_runtime.change_cache import ChangeCache
from drift_runtime.messaging import TransientFault
from drift_schema import subjects
from drift_schema.traffic import TrafficSplit
from drift_schema.workflow import WorkflowDefinition

CACHE_TTL_S = 30.0
CACHE_ENTRIES = 4096


@contextlib.contextmanager
def _store_faults(what: str) -> Iterator[None]:
    """Any fault of the dsl-store is transient to a command: it waits in the stream until the store answers."""
    try:
        yield
    except DriftError as error:
        raise TransientFault(f"dsl-store could not give {what}: {error}") from None


class DefinitionClient:
    """Reads definitions from the dsl-store with the service token, acting for one tenant per call."""

    def __init__(self, base_url: str, service_token: str) -> None:
        self.store = StoreClient(base_url, service_token, timeout=SERVICE_TIMEOUT)
        # Keys start with the tenant: any change event of a tenant drops all of its entries.
        self.cache: ChangeCache[tuple[str, ...], Any] = ChangeCache(CACHE_ENTRIES, ttl_s=CACHE_TTL_S)

    async def listen(self, nc: NatsClient) -> None:
        """Cache what is read while `nc` hears the dsl-store's change events (without this, nothing is cached)."""
        await self.cache.listen(nc, self._changed)

    async def _changed(self, msg: Msg) -> None:
        try:
            tenant = subjects.tenant_of(msg.subject)
        except ValueError:
            return
        self.cache.drop_where(lambda key: key[0] == tenant)

    async def pinned(self, tenant: str, definition_id: str, version: str) -> WorkflowDefinition | None:
        """The workflow at `version` with every referenced node inlined; None when it does not exist."""
        key = (tenant, "workflow", definition_id, version)
        cached = self.cache.find(key)
        if cached is not None:
            found: WorkflowDefinition = cached.value
            return found
        generation = self.cache.generation
        with _store_faults("the definition"):
            definition = await self.store.workflow(definition_id, version, enriched=True, tenant=tenant)
        if definition is not None:
            self.cache.put(key, definition, generation)
        return definition

    async def enums(self, tenant: str) -> dict[str, Any]:
        """The tenant's enum store (`$enums`), pinned into a run at start; `{}` when it has none."""
        key = (tenant, "enums")
        cached = self.cache.find(key)
        if cached is not None:
            found: dict[str, Any] = cached.value
            return found
        generation = self.cache.generation
        with _store_faults("enums"):
            enums = await self.store.enums(tenant=tenant)
        self.cache.put(key, enums, generation)
        return enums

    async def traffic_split(self, tenant: str, definition_id: str) -> TrafficSplit | None:
        """The workflow's traffic split between published versions; None when it has no ACTIVE version."""
        key = (tenant, "traffic", definition_id)
        cached = self.cache.find(key)
        if cached is not None:
            found: TrafficSplit | None = cached.value
            return found
        generation = self.cache.generation
        with _store_faults("the traffic split"):
            split = await self.store.traffic_split(definition_id, tenant=tenant)
        self.cache.put(key, split, generation)
        return split

    async def aclose(self) -> None:
        await self.store.aclose()
