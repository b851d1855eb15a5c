"""Traffic split on the real stack (contract 12): ACTIVE starts follow the weights, sticky per workflowId."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from typing import Any

import httpx
import pytest

from drift_cli.bundles import dsl_store_client
from drift_cli.platform import Platform
from drift_schema.traffic import pick

pytestmark = pytest.mark.asyncio(loop_scope="session")

STARTS = 60
CHANGE_DELAY_S = 1.0
"""A new split or activation reaches the next start within a second (the change events drop every cache)."""
LISTED_S = 10.0


def _workflow(workflow_id: str, comment: str) -> dict[str, Any]:
    """Ends at once, naming the version it ran as its disposition."""
    done = {"id": "done", "type": "SUCCESS", "disposition": "{% 'ran ' & $workflow.definitionVersion %}"}
    return {
        "id": workflow_id,
        "comment": comment,
        "startNode": "done",
        "states": {"done": {"nodeDefinition": done, "end": True}},
    }


def _ok(response: httpx.Response) -> Any:
    assert response.is_success, (response.request.method, response.request.url.path, response.text)
    return response.json()


async def _publish_two_versions(dsl: httpx.AsyncClient, workflow_id: str) -> None:
    """Create the workflow and publish it twice: versions 1 and 2 (their comments differ)."""
    _ok(await dsl.post("/workflowDefinition", json=_workflow(workflow_id, "v1")))
    _ok(await dsl.post(f"/workflowDefinition/{workflow_id}/publishWorkflow"))
    _ok(await dsl.put("/workflowDefinition", json=_workflow(workflow_id, "v2")))
    _ok(await dsl.post(f"/workflowDefinition/{workflow_id}/publishWorkflow"))


async def _ran(gateway: httpx.AsyncClient, workflow_id: str, run_id: str) -> str:
    """Start `run_id` on ACTIVE and answer the version it ran."""
    body = _ok(await gateway.post("/v3/workflow/start", json={"workflow": {"id": workflow_id}, "workflowId": run_id}))
    assert body["workflowStatus"] == "COMPLETED", body
    disposition: str = body["disposition"]
    return disposition.removeprefix("ran ")


async def _all_ran(gateway: httpx.AsyncClient, workflow_id: str, run_ids: list[str]) -> dict[str, str]:
    slots = asyncio.Semaphore(8)

    async def one(run_id: str) -> tuple[str, str]:
        async with slots:
            return run_id, await _ran(gateway, workflow_id, run_id)

    return dict(await asyncio.gather(*(one(run_id) for run_id in run_ids)))


async def test_active_starts_follow_the_split_sticky_per_workflow_id_and_rollback(
    platform: Platform, gateway: httpx.AsyncClient
) -> None:
    """Under a 50/50 split each ACTIVE start runs the version its workflowId's hash picks (both versions seen),
    the same id picks the same version again, run summaries carry the picked version, and activate rolls back."""
    workflow_id = f"split_{uuid.uuid4().hex[:8]}"
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        await _publish_two_versions(dsl, workflow_id)
        split = [{"version": "1", "weight": 50}, {"version": "2", "weight": 50}]
        _ok(await dsl.put(f"/workflowDefinition/{workflow_id}/traffic", json={"split": split}))
        weights = [(1, 50), (2, 50)]

        run_ids = [f"split-{uuid.uuid4().hex[:12]}" for _ in range(STARTS)]
        expected = {run_id: str(pick(weights, run_id)) for run_id in run_ids}
        # The first starts may still see the split's previous state for the event delivery delay.
        deadline = time.monotonic() + CHANGE_DELAY_S
        while await _ran(gateway, workflow_id, probe := f"probe-{uuid.uuid4().hex[:12]}") != str(pick(weights, probe)):
            assert time.monotonic() < deadline, "the split did not reach starts within a second"
        ran = await _all_ran(gateway, workflow_id, run_ids)
        assert ran == expected
        assert set(collections.Counter(ran.values())) == {"1", "2"}

        # Sticky: the same workflowIds, started again under the same split, run the same versions.
        again = await _all_ran(gateway, workflow_id, run_ids[:10])
        assert again == {run_id: expected[run_id] for run_id in run_ids[:10]}

        # Run summaries carry the picked version (no event says when a run is listed: poll).
        listed_deadline = time.monotonic() + LISTED_S
        while True:
            page = _ok(await gateway.get("/v3/workflows", params={"definitionId": workflow_id, "pageSize": 200}))
            summaries = {item["workflowId"]: item["definitionVersion"] for item in page["runs"]}
            if all(run_id in summaries for run_id in run_ids) or time.monotonic() > listed_deadline:
                break
            await asyncio.sleep(0.2)
        assert {run_id: summaries.get(run_id) for run_id in run_ids} == expected

        # Rollback: activate 1 alone; every new start runs 1.
        _ok(await dsl.post(f"/workflowDefinition/{workflow_id}/activate", params={"version": "1"}))
        moved = [run_id for run_id in run_ids if expected[run_id] == "2"][:5]
        deadline = time.monotonic() + CHANGE_DELAY_S
        while await _ran(gateway, workflow_id, f"probe-{uuid.uuid4().hex[:12]}") != "1":
            assert time.monotonic() < deadline, "the rollback did not reach starts within a second"
        assert await _all_ran(gateway, workflow_id, moved) == dict.fromkeys(moved, "1")
        versions = _ok(await dsl.get(f"/workflowDefinition/{workflow_id}/versions"))
        assert [(v["version"], v["weight"]) for v in versions] == [("1", 100), ("2", 0)]


async def test_pinned_version_ignores_the_split(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """A start naming a version runs that version whatever the split says."""
    workflow_id = f"split_{uuid.uuid4().hex[:8]}"
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        await _publish_two_versions(dsl, workflow_id)
        _ok(
            await dsl.put(
                f"/workflowDefinition/{workflow_id}/traffic", json={"split": [{"version": "2", "weight": 100}]}
            )
        )
    for _ in range(3):
        body = _ok(
            await gateway.post(
                "/v3/workflow/start",
                json={"workflow": {"id": workflow_id, "version": "1"}, "workflowId": f"pin-{uuid.uuid4().hex[:12]}"},
            )
        )
        assert body["disposition"] == "ran 1"
