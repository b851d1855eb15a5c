"""The per-tenant schedule limit (DRIFT_MAX_SCHEDULES_PER_TENANT) and cron checks, on the real Temporal."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from drift_cli.servers import InfraStack
from drift_gateway.errors import Invalid, TooManyRequests
from drift_gateway.schedules import Schedules
from drift_runtime.search_attributes import ensure_registered
from drift_runtime.temporal import connect_temporal
from drift_schema.api import WorkflowRef
from drift_schema.schedules import ScheduleRequest, cron_problem

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_tenant_over_its_schedule_limit_gets_429(infra: InfraStack) -> None:
    """Once a tenant has its limit of schedules, creating one more answers 429; other tenants are unaffected."""
    client = await connect_temporal(infra.temporal_address, "default")
    await ensure_registered(client, "default")
    schedules = Schedules(client, "drift-limits", max_schedules=2)
    tenant = f"quota{uuid.uuid4().hex[:8]}"

    def request(n: int) -> ScheduleRequest:
        return ScheduleRequest(schedule_id=f"s{n}", workflow=WorkflowRef(id="any"), cron="0 3 * * *", paused=True)

    await schedules.create(tenant, request(1))
    await schedules.create(tenant, request(2))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while len(await schedules.list(tenant)) < 2:  # schedule listing is eventually consistent
        assert loop.time() < deadline
        await asyncio.sleep(0.1)
    with pytest.raises(TooManyRequests):
        await schedules.create(tenant, request(3))
    other = await schedules.create(f"{tenant}x", request(3))
    assert other.schedule_id == "s3"
    await schedules.delete(tenant, "s1")
    await schedules.delete(tenant, "s2")
    await schedules.delete(f"{tenant}x", "s3")
    with pytest.raises(Invalid):
        await schedules.create(tenant, ScheduleRequest(schedule_id="s4", workflow=WorkflowRef(id="any"), cron="@daily"))


@pytest.mark.parametrize(
    ("cron", "valid"),
    [
        ("0 3 * * *", True),
        ("*/15 9-17 * * MON-FRI", True),
        ("0 0 1,15 JAN,jul 0", True),
        ("0 0 * * 7", True),
        ("60 * * * *", False),
        ("* 24 * * *", False),
        ("* * 0 * *", False),
        ("* * * 13 *", False),
        ("* * * * 8", False),
        ("5-1 * * * *", False),
        ("*/0 * * * *", False),
        ("@daily", False),
        ("* * * * * *", False),
    ],
)
async def test_cron_is_five_fields_in_range(cron: str, valid: bool) -> None:
    """Five fields (minute hour day-of-month month day-of-week), each within its range; anything else is refused."""
    assert (cron_problem(cron) is None) == valid, cron_problem(cron)
