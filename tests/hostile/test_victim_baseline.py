"""The hostile suite's yardstick: with no attack, the victim's ordinary runs answer COMPLETED at once."""

from __future__ import annotations

import asyncio

import pytest

from hostile.support import VICTIM_DEADLINE_S, VictimCheck

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_victim_runs_complete_quickly_without_attack(victim_keeps_completing: VictimCheck) -> None:
    """An idle platform answers the victim's ordinary sync starts COMPLETED well within the deadline."""
    times = await victim_keeps_completing(asyncio.sleep(0))
    assert len(times) >= 3
    assert max(times) < VICTIM_DEADLINE_S
