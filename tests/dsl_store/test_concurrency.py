"""Publishing is race-safe: concurrent publishes never share a number and none is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from litestar.testing import AsyncTestClient

from drift_dsl_store.app import create_app
from drift_dsl_store.config import Settings
from drift_dsl_store.store import DefinitionKey, Kind, Published, SqlDefinitionStore
from drift_dsl_store.store.base import RenderBody
from dsl_store.helpers import ACME, RecordingChanges, script_node


class MeetingStore(SqlDefinitionStore):
    """Holds each publish until two are in flight, so both requests pass every check before either writes."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.meeting = asyncio.Barrier(2)

    async def publish(self, key: DefinitionKey, render: RenderBody, activate_if_none: bool) -> Published:
        async with asyncio.timeout(10):
            await self.meeting.wait()
        return await super().publish(key, render, activate_if_none)


async def test_two_concurrent_publishes_get_distinct_numbers(settings: Settings) -> None:
    """Two publishes racing over HTTP (both past the idempotency check) get two different numbers."""
    app = create_app(settings, store=MeetingStore(settings.store_url), changes=RecordingChanges())
    # The test client serialises requests; httpx's ASGI transport lets both run at once on this loop.
    async with (
        AsyncTestClient(app=app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://dsl-store",
        ) as client,
    ):
        await client.post("/nodeDefinition", json=script_node("calc"), headers=ACME)
        first, second = await asyncio.gather(
            client.post("/nodeDefinition/calc/publishNode", headers=ACME),
            client.post("/nodeDefinition/calc/publishNode", headers=ACME),
        )
        assert first.status_code == second.status_code == 200
        assert {first.json()["version"], second.json()["version"]} == {"1", "2"}
        for version in ("1", "2"):
            fetched = await client.get("/nodeDefinition/calc", params={"version": version}, headers=ACME)
            assert fetched.json()["version"] == version


async def test_store_publishes_race_gap_free(tmp_path: Path) -> None:
    """Many publishes racing in the store get the numbers 1..n exactly once, each with its own body."""
    store = SqlDefinitionStore(f"sqlite+aiosqlite:///{tmp_path / 'race.db'}")
    await store.start()
    try:
        key = DefinitionKey("acme", Kind.WORKFLOW, "raced")
        await store.create(key, b'{"version":"SNAPSHOT"}')
        results = await asyncio.gather(
            *(store.publish(key, lambda v: f'{{"version":"{v}"}}'.encode(), activate_if_none=True) for _ in range(12))
        )
        numbers = sorted(int(result.definition.version) for result in results)
        assert numbers == list(range(1, 13))
        assert sum(result.activated for result in results) == 1
        for number in numbers:
            stored = await store.get(key, str(number))
            assert stored is not None and stored.body == f'{{"version":"{number}"}}'.encode()
        versions = await store.versions(key)
        assert versions is not None and [v.version for v in versions] == numbers
        latest = await store.get(key, "LATEST")
        assert latest is not None and latest.version == "12"
    finally:
        await store.close()
