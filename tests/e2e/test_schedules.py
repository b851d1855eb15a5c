"""Schedules on the real stack (contract 9): created, triggered, listed runs, paused, deleted, tenant-scoped."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from support.polling import until
from temporalio.client import Client

from drift_cli.platform import Platform
from e2e.definitions import define, on_event, success

pytestmark = pytest.mark.asyncio(loop_scope="session")

WITHIN_S = 10.0
"""A triggered firing starts its run through the dispatcher's schedule worker, then visibility lists it (5 s)."""
RUN_ID_SHAPE = r"-\d{8}T\d{6}Z"

ECHO: dict[str, Any] = {
    "startNode": "done",
    "states": {
        "done": {
            "nodeDefinition": {
                "id": "inline",
                "type": "SUCCESS",
                "disposition": "{% $global.params.greeting & ' from ' & $global.threadContext.scheduleId %}",
            },
            "end": True,
        }
    },
}


def _ok(response: httpx.Response) -> Any:
    assert response.is_success, (response.request.method, response.request.url, response.text)
    return response.json() if response.content else None


async def _define(platform: Platform) -> str:
    """ECHO, created, published and activated for acme."""
    return await define(platform, ECHO["states"], ECHO["startNode"])


async def _until(check: Callable[[], Awaitable[Any]], within: float = WITHIN_S) -> Any:
    """Poll `check` until it answers something truthy (no event announces a listing)."""
    return await until(check, within, every=0.2)


def _schedule_body(schedule_id: str, definition_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "scheduleId": schedule_id,
        "workflow": {"id": definition_id},
        "cron": "0 3 * * *",
        "params": {"greeting": "hello"},
        "paused": True,
        **extra,
    }


async def test_a_triggered_schedule_starts_a_listed_run(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """Trigger starts one run now, `<scheduleId>-<yyyyMMddTHHmmssZ>`, on ACTIVE, listed like any run."""
    definition_id = await _define(platform)
    schedule_id = f"nightly-{uuid.uuid4().hex[:8]}"
    created = await gateway.post("/v3/schedules", json=_schedule_body(schedule_id, definition_id))
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["scheduleId"] == schedule_id
    assert schedule["workflow"] == {"id": definition_id, "version": "ACTIVE"}
    assert (schedule["cron"], schedule["intervalSeconds"], schedule["overlap"]) == ("0 3 * * *", None, "SKIP")
    assert schedule["paused"] is True and schedule["params"] == {"greeting": "hello"}
    assert 1 <= len(schedule["nextRunTimes"]) <= 5
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT03:00:00Z", moment) for moment in schedule["nextRunTimes"])
    assert schedule["recentRuns"] == []

    _ok(await gateway.post(f"/v3/schedules/{schedule_id}/trigger"))

    async def listed_run() -> Any:
        page = _ok(await gateway.get("/v3/workflows", params={"definitionId": definition_id}))
        return page["runs"] if page["runs"] and page["runs"][0]["workflowStatus"] == "COMPLETED" else None

    runs = await _until(listed_run)
    assert len(runs) == 1
    run_id = runs[0]["workflowId"]
    assert re.fullmatch(re.escape(schedule_id) + RUN_ID_SHAPE, run_id), run_id
    assert runs[0]["definitionVersion"] == "1"
    detail = _ok(await gateway.get(f"/v3/workflow/{run_id}"))
    assert detail["disposition"] == f"hello from {schedule_id}"
    assert detail["context"]["threadContext"]["scheduleId"] == schedule_id

    async def recorded() -> Any:
        return _ok(await gateway.get(f"/v3/schedules/{schedule_id}"))["recentRuns"]

    recent = await _until(recorded)
    assert recent[0]["workflowId"] == run_id
    _ok(await gateway.delete(f"/v3/schedules/{schedule_id}"))


async def test_pause_unpause_list_and_delete(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """Pause and unpause answer the schedule; it is listed until deleted; deleting answers 204, then 404."""
    definition_id = await _define(platform)
    schedule_id = f"every-{uuid.uuid4().hex[:8]}"
    body = _schedule_body(schedule_id, definition_id, paused=False, overlap="BUFFER_ONE")
    del body["cron"]
    body["intervalSeconds"] = 3600
    created = _ok(await gateway.post("/v3/schedules", json=body))
    assert (created["intervalSeconds"], created["cron"], created["paused"]) == (3600, None, False)
    assert created["overlap"] == "BUFFER_ONE"
    assert _ok(await gateway.post(f"/v3/schedules/{schedule_id}/pause"))["paused"] is True
    assert _ok(await gateway.get(f"/v3/schedules/{schedule_id}"))["paused"] is True
    assert _ok(await gateway.post(f"/v3/schedules/{schedule_id}/unpause"))["paused"] is False

    async def listed() -> Any:
        schedules = _ok(await gateway.get("/v3/schedules"))["schedules"]
        return [entry for entry in schedules if entry["scheduleId"] == schedule_id]

    (entry,) = await _until(listed)
    assert entry["workflow"]["id"] == definition_id
    deleted = await gateway.delete(f"/v3/schedules/{schedule_id}")
    assert deleted.status_code == 204, deleted.text
    gone = await gateway.get(f"/v3/schedules/{schedule_id}")
    assert gone.status_code == 404 and gone.headers["content-type"].startswith("application/problem+json")
    assert (await gateway.post(f"/v3/schedules/{schedule_id}/trigger")).status_code == 404


async def test_conflict_and_bad_input(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """An existing id answers 409; a bad cron, or neither/both of cron and intervalSeconds, 422 at /cron."""
    definition_id = await _define(platform)
    schedule_id = f"twice-{uuid.uuid4().hex[:8]}"
    _ok(await gateway.post("/v3/schedules", json=_schedule_body(schedule_id, definition_id)))
    again = await gateway.post("/v3/schedules", json=_schedule_body(schedule_id, definition_id))
    assert again.status_code == 409, again.text
    for cron in ("61 * * * *", "* * * *", "0 3 * * * *", "0 25 * * *", "*/0 * * * *", "x y z w v"):
        bad = await gateway.post(
            "/v3/schedules", json=_schedule_body(f"bad-{uuid.uuid4().hex[:8]}", definition_id, cron=cron)
        )
        assert bad.status_code == 422, (cron, bad.text)
        assert bad.json()["errors"][0]["pointer"] == "/cron", bad.text
    both = _schedule_body(f"both-{uuid.uuid4().hex[:8]}", definition_id, intervalSeconds=60)
    assert (await gateway.post("/v3/schedules", json=both)).status_code == 422
    neither = _schedule_body(f"none-{uuid.uuid4().hex[:8]}", definition_id)
    del neither["cron"]
    assert (await gateway.post("/v3/schedules", json=neither)).status_code == 422
    bad_overlap = await gateway.post(
        "/v3/schedules", json=_schedule_body(f"ov-{uuid.uuid4().hex[:8]}", definition_id, overlap="SOMETIMES")
    )
    assert bad_overlap.status_code == 422 and bad_overlap.json()["errors"][0]["pointer"] == "/overlap"
    _ok(await gateway.delete(f"/v3/schedules/{schedule_id}"))


async def test_another_tenants_schedule_is_not_found(
    platform: Platform, gateway: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    """globex can neither see, change, trigger nor delete acme's schedule, and may reuse its id."""
    definition_id = await _define(platform)
    schedule_id = f"mine-{uuid.uuid4().hex[:8]}"
    _ok(await gateway.post("/v3/schedules", json=_schedule_body(schedule_id, definition_id)))
    assert (await globex.get(f"/v3/schedules/{schedule_id}")).status_code == 404
    for action in ("pause", "unpause", "trigger"):
        assert (await globex.post(f"/v3/schedules/{schedule_id}/{action}")).status_code == 404
    assert (await globex.delete(f"/v3/schedules/{schedule_id}")).status_code == 404
    assert all(entry["scheduleId"] != schedule_id for entry in _ok(await globex.get("/v3/schedules"))["schedules"])
    theirs = await globex.post("/v3/schedules", json=_schedule_body(schedule_id, "their_own_definition"))
    assert theirs.status_code == 201, theirs.text
    ours = _ok(await gateway.get(f"/v3/schedules/{schedule_id}"))
    assert ours["workflow"]["id"] == definition_id
    _ok(await globex.delete(f"/v3/schedules/{schedule_id}"))
    assert _ok(await gateway.get(f"/v3/schedules/{schedule_id}"))["scheduleId"] == schedule_id
    _ok(await gateway.delete(f"/v3/schedules/{schedule_id}"))


async def test_skip_overlap_holds_while_the_drift_run_is_waiting(
    platform: Platform, gateway: httpx.AsyncClient
) -> None:
    """With SKIP, firings are skipped for as long as the previous Drift run is open, then resume once it closes."""
    definition_id = await define(platform, {"hold": on_event("go", "done"), "done": success("ok")}, "hold")
    schedule_id = f"often-{uuid.uuid4().hex[:8]}"
    body = _schedule_body(schedule_id, definition_id, paused=False)
    del body["cron"]
    body["intervalSeconds"] = 1
    _ok(await gateway.post("/v3/schedules", json=body))
    temporal = await Client.connect(platform.infra.temporal_address)
    handle = temporal.get_schedule_handle(f"acme~{schedule_id}")

    async def runs() -> list[dict[str, Any]]:
        page = _ok(await gateway.get("/v3/workflows", params={"definitionId": definition_id}))
        return list(page["runs"])

    async def skipped_twice() -> bool:
        return (await handle.describe()).info.num_actions_skipped_overlap >= 2

    first = (await _until(runs))[0]
    await _until(skipped_twice)
    assert [run["workflowId"] for run in await runs()] == [first["workflowId"]]
    _ok(await gateway.post(f"/v3/workflow/{first['workflowId']}/event/go", json={}))

    async def a_second_run() -> Any:
        return [run for run in await runs() if run["workflowId"] != first["workflowId"]]

    await _until(a_second_run)
    _ok(await gateway.delete(f"/v3/schedules/{schedule_id}"))
    for run in await runs():
        if run["workflowStatus"] == "WAITING":
            await gateway.delete(f"/v3/workflow/terminate/{run['workflowId']}")
