"""Pinning: the dispatcher resolves a run's definitions from the dsl-store once, at start.

What it read is kept in process while the definition-change events of the dsl-store
(`drift.*.evt.dsl.>`) are heard: any event of a tenant drops all of that tenant's entries (an
enriched workflow depends on its nodes' pointers too), a NATS disconnect stops caching and a
reconnect starts again from empty, and every entry expires after CACHE_TTL_S in case an event
was never published. So an activation reaches the next start within the event delivery delay,
as the dsl-store's own pointer cache does, and a start costs no dsl-store round trip.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from drift_runtime.messaging import TransientFault
from drift_schema import codec, subjects
from drift_schema.traffic import TrafficSplit
from drift_schema.workflow import WorkflowDefinition

TENANT_HEADER = "X-Drift-Tenant"
TIMEOUT = httpx.Timeout(5.0, connect=2.0)
CACHE_TTL_S = 30.0
CACHE_ENTRIES = 4096


class _TenantCache:
    """Definitions and enums read for one tenant's starts, valid while change events are heard."""

    def __init__(self) -> None:
        self.nc: NatsClient | None = None
        self._reconnects = 0
        self._generation = 0
        self._entries: dict[tuple[str, ...], tuple[float, Any]] = {}

    async def listen(self, nc: NatsClient) -> None:
        await nc.subscribe(subjects.DSL_EVENT_SUBJECTS, cb=self._changed)
        self._reconnects = nc.stats["reconnects"]
        self.nc = nc

    async def _changed(self, msg: Msg) -> None:
        try:
            tenant = subjects.tenant_of(msg.subject)
        except ValueError:
            return
        self._generation += 1
        for key in [key for key in self._entries if key[0] == tenant]:
            del self._entries[key]

    def _live(self) -> bool:
        """Whether events are heard; a reconnect may have missed some, so it empties the cache."""
        if self.nc is None or not self.nc.is_connected:
            return False
        reconnects = self.nc.stats["reconnects"]
        if reconnects != self._reconnects:
            self._reconnects = reconnects
            self._generation += 1
            self._entries.clear()
        return True

    def get(self, key: tuple[str, ...]) -> tuple[bool, Any]:
        if not self._live():
            return False, None
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            return False, None
        return True, found[1]

    @property
    def generation(self) -> int:
        return self._generation

    def put(self, key: tuple[str, ...], value: Any, generation: int) -> None:
        # Kept only when no event came while it was read: the event could have been about it.
        if not self._live() or generation != self._generation:
            return
        if len(self._entries) >= CACHE_ENTRIES:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + CACHE_TTL_S, value)


class DefinitionClient:
    """Reads definitions from the dsl-store with the service token, acting for one tenant per call."""

    def __init__(self, base_url: str, service_token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=TIMEOUT, headers={"Authorization": f"Bearer {service_token}"}
        )
        self.cache = _TenantCache()

    async def listen(self, nc: NatsClient) -> None:
        """Cache what is read while `nc` hears the dsl-store's change events (without this, nothing is cached)."""
        await self.cache.listen(nc)

    async def pinned(self, tenant: str, definition_id: str, version: str) -> WorkflowDefinition | None:
        """The workflow at `version` with every referenced node inlined; None when it does not exist."""
        key = (tenant, "workflow", definition_id, version)
        hit, cached = self.cache.get(key)
        if hit:
            found: WorkflowDefinition = cached
            return found
        generation = self.cache.generation
        definition = await self._pinned(tenant, definition_id, version)
        if definition is not None:
            self.cache.put(key, definition, generation)
        return definition

    async def _pinned(self, tenant: str, definition_id: str, version: str) -> WorkflowDefinition | None:
        try:
            response = await self.http.get(
                f"/workflowDefinition/{definition_id}",
                params={"version": version, "enrichNodeDefinition": "true"},
                headers={TENANT_HEADER: tenant},
            )
        except httpx.HTTPError as error:
            raise TransientFault(f"dsl-store unreachable: {error}") from None
        if response.status_code in (404, 422):
            return None
        if response.status_code != 200:
            raise TransientFault(f"dsl-store answered {response.status_code}")
        return codec.decode(response.content, WorkflowDefinition)

    async def enums(self, tenant: str) -> dict[str, Any]:
        """The tenant's enum store (`$enums`), pinned into a run at start; `{}` when it has none."""
        key = (tenant, "enums")
        hit, cached = self.cache.get(key)
        if hit:
            found: dict[str, Any] = cached
            return found
        generation = self.cache.generation
        enums = await self._enums(tenant)
        self.cache.put(key, enums, generation)
        return enums

    async def _enums(self, tenant: str) -> dict[str, Any]:
        try:
            response = await self.http.get("/enums", headers={TENANT_HEADER: tenant})
        except httpx.HTTPError as error:
            raise TransientFault(f"dsl-store unreachable: {error}") from None
        if response.status_code == 404:
            return {}
        if response.status_code != 200:
            raise TransientFault(f"dsl-store answered {response.status_code} for enums")
        return codec.decode(response.content, dict[str, Any])

    async def traffic_split(self, tenant: str, definition_id: str) -> TrafficSplit | None:
        """The workflow's traffic split between published versions; None when it has no ACTIVE version."""
        key = (tenant, "traffic", definition_id)
        hit, cached = self.cache.get(key)
        if hit:
            found: TrafficSplit | None = cached
            return found
        generation = self.cache.generation
        try:
            response = await self.http.get(
                f"/workflowDefinition/{definition_id}/traffic", headers={TENANT_HEADER: tenant}
            )
        except httpx.HTTPError as error:
            raise TransientFault(f"dsl-store unreachable: {error}") from None
        if response.status_code in (404, 422):
            split = None
        elif response.status_code != 200:
            raise TransientFault(f"dsl-store answered {response.status_code} for the traffic split")
        else:
            split = codec.decode(response.content, TrafficSplit)
        self.cache.put(key, split, generation)
        return split

    async def aclose(self) -> None:
        await self.http.aclose()
