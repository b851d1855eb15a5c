"""Per-tenant shares of the worker's activity slots: one tenant's hanging HTTP endpoints never stall another's calls."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from nats.aio.client import Client as NatsClient
from temporalio.client import Client

from drift_runtime.temporal import run_result
from worker.worker_support import Runner, Stub, definition, running_worker, state, success

SLOTS = 8
"""The worker's activity slots in these tests: each tenant may hold a quarter of them."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def small_worker(temporal_client: Client, nats_client: NatsClient) -> AsyncIterator[Runner]:
    """A worker with `SLOTS` activity slots."""
    async with running_worker(temporal_client, nats_client, "fairness", max_concurrent_activities=SLOTS) as running:
        yield running


def http(url: str, next_node: str | None = None, end: bool = False) -> dict[str, Any]:
    node = {
        "type": "HTTP",
        "timeoutMs": 20_000,
        "request": {"method": "GET", "url": url},
        "output": "{% $response.status %}",
    }
    return state(node, next_node, end=end)


async def test_a_tenants_hanging_calls_never_stall_another_tenants_calls(small_worker: Runner, stub: Stub) -> None:
    """mallory's PARALLEL of hanging HTTP calls (one per worker slot) holds only its share of the slots:
    globex's HTTP calls to a fast endpoint keep completing within seconds meanwhile."""
    hanging = [f"h{i}" for i in range(SLOTS)]
    tag = uuid.uuid4().hex
    attack = definition(
        {
            "fan": state({"type": "PARALLEL", "branches": hanging}, "done"),
            **{name: http(stub.url(f"/slow?s=8&tag={tag}"), end=True) for name in hanging},
            "done": success(),
        },
        start="fan",
    )
    ordinary = definition({"call": http(stub.url("/json"), "done"), "done": success("{% $string($global.call) %}")})

    def hanging_calls() -> int:
        return len([seen for seen in stub.requests("/slow") if seen.query.get("tag") == [tag]])

    share = SLOTS // 4
    _, attacker = await small_worker.start(attack, tenant="mallory")
    try:
        # The stub records no event to await: poll, with a deadline, until the attacker's share hangs.
        deadline = time.monotonic() + 20
        while hanging_calls() < share:
            assert time.monotonic() < deadline, "the attacker's calls never arrived"
            await asyncio.sleep(0.05)
        for round_ in range(3):
            began = time.monotonic()
            _, handle = await small_worker.start(ordinary, tenant="globex")
            async with asyncio.timeout(30):
                snapshot = await run_result(handle)
            took = time.monotonic() - began
            assert (snapshot.workflow_status, snapshot.disposition) == ("COMPLETED", "200")
            assert took < 4, f"globex's HTTP call took {took:.1f} s while mallory's calls hang"
            if round_ == 0:
                # Well within the 8 s the first calls hang: the attacker holds its share and no more.
                assert hanging_calls() == share
    finally:
        await attacker.terminate("test over")
