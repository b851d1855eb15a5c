"""FairLanes: per-tenant and total slots, served round-robin, so a stuck tenant holds only its own share."""

from __future__ import annotations

import asyncio

import pytest

from drift_notifier.delivery import FairLanes

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Recorder:
    """Runs items that wait on a per-tenant gate and notes the order they started in."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, tenant: str) -> asyncio.Event:
        return self.gates.setdefault(tenant, asyncio.Event())

    async def run(self, tenant: str, item: int) -> None:
        self.started.append((tenant, item))
        await self.gate(tenant).wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_stuck_tenant_holds_only_its_own_slots() -> None:
    """A tenant whose items never finish runs `per_tenant` of them; another tenant's items start at once."""
    recorder = Recorder()
    lanes: FairLanes[int] = FairLanes(total=10, per_tenant=3, run=recorder.run)
    for i in range(50):
        lanes.submit("mallory", i)
    recorder.gate("globex").set()
    for i in range(4):
        lanes.submit("globex", i)
    await settle()
    assert [i for t, i in recorder.started if t == "mallory"] == [0, 1, 2]
    assert [i for t, i in recorder.started if t == "globex"] == [0, 1, 2, 3]
    assert lanes.held("mallory") == 50 and lanes.held("globex") == 0
    recorder.gate("mallory").set()
    await lanes.wait_idle()
    assert lanes.held("mallory") == 0 and len(recorder.started) == 54


async def test_the_total_cap_is_shared_round_robin() -> None:
    """With the total cap full, freed slots go to tenants in turn, not to whoever queued most."""
    recorder = Recorder()
    recorder.gate("a").set()
    recorder.gate("b").set()
    lanes: FairLanes[int] = FairLanes(total=1, per_tenant=5, run=recorder.run)
    for i in range(4):
        lanes.submit("a", i)
    for i in range(3):
        lanes.submit("b", i)
    await lanes.wait_idle()
    assert recorder.started == [("a", 0), ("a", 1), ("b", 0), ("a", 2), ("b", 1), ("a", 3), ("b", 2)]


async def test_take_queued_returns_what_never_started() -> None:
    """On shutdown every item not yet started is handed back, none twice, none started later."""
    recorder = Recorder()
    lanes: FairLanes[int] = FairLanes(total=1, per_tenant=1, run=recorder.run)
    for i in range(4):
        lanes.submit("a", i)
    await settle()
    assert sorted(lanes.take_queued()) == [1, 2, 3]
    recorder.gate("a").set()
    await lanes.wait_idle()
    assert recorder.started == [("a", 0)]
