"""Hostile tenant against the runs list and schedules: no peeking, no injected queries, no slowdown."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from hostile.support import VictimCheck, ordinary_run

pytestmark = pytest.mark.asyncio(loop_scope="session")

INJECTIONS: list[tuple[str, str]] = [
    ("definitionId", "ordinary' OR DriftTenant = 'globex"),
    ("definitionId", "ordinary\nOR 1=1"),
    ("definitionVersion", "1' OR '1'='1"),
    ("status", "RUNNING' OR DriftTenant = 'globex"),
    ("startedAfter", "2026-01-01T00:00:00Z' OR DriftTenant = 'globex"),
    ("pageSize", "50 OR 1=1"),
]


async def _all_runs(client: httpx.AsyncClient, **query: Any) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params = {"pageSize": 500, **query, **({"pageToken": token} if token else {})}
        page = await client.get("/v3/workflows", params=params)
        assert page.status_code == 200, page.text
        runs += page.json()["runs"]
        token = page.json()["nextPageToken"]
        if token is None:
            return runs


async def test_the_attacker_never_lists_the_victims_runs(
    attacker: httpx.AsyncClient, victim: httpx.AsyncClient
) -> None:
    """mallory's listing, filtered or not, holds none of globex's runs, and injected filters are refused."""
    mine = [f"victim-listed-{uuid.uuid4().hex[:8]}-{n}" for n in range(2)]
    for workflow_id in mine:
        await ordinary_run(victim, workflow_id)
    deadline = time.monotonic() + 15  # the listing must settle before absence means anything
    while {run["workflowId"] for run in await _all_runs(victim, definitionId="ordinary")} < set(mine):
        assert time.monotonic() < deadline, "the victim's runs were not listed"
        await asyncio.sleep(0.1)

    seen = {run["workflowId"] for run in await _all_runs(attacker)}
    seen |= {run["workflowId"] for run in await _all_runs(attacker, definitionId="ordinary", status="COMPLETED")}
    assert not seen & set(mine)
    for name, value in INJECTIONS:
        answer = await attacker.get("/v3/workflows", params={name: value})
        assert answer.status_code == 422, (name, value, answer.text)

    first = await victim.get("/v3/workflows", params={"definitionId": "ordinary", "pageSize": 1})
    token = first.json()["nextPageToken"]
    assert token
    stolen = await attacker.get("/v3/workflows", params={"definitionId": "ordinary", "pageSize": 1, "pageToken": token})
    assert stolen.status_code == 422, stolen.text


async def test_a_schedule_firing_every_second_does_not_slow_the_victim(
    attacker: httpx.AsyncClient, victim_keeps_completing: VictimCheck
) -> None:
    """mallory's schedule firing every second with ALLOW_ALL leaves globex's ordinary runs answering at once."""
    schedule_id = f"flood-{uuid.uuid4().hex[:8]}"

    async def attack() -> None:
        body = {
            "scheduleId": schedule_id,
            "workflow": {"id": "ordinary"},
            "intervalSeconds": 1,
            "overlap": "ALLOW_ALL",
            "params": {"values": [1]},
        }
        created = await attacker.post("/v3/schedules", json=body)
        assert created.status_code == 201, created.text
        try:
            deadline = time.monotonic() + 15
            while len(await _all_runs(attacker, definitionId="ordinary", status="COMPLETED")) < 3:
                assert time.monotonic() < deadline, "the attacker's schedule never fired"
                await asyncio.sleep(0.2)
        finally:
            await attacker.delete(f"/v3/schedules/{schedule_id}")

    times = await victim_keeps_completing(attack())
    assert len(times) >= 3
