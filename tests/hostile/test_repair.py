"""Retry and test runs under a hostile tenant: no reach into another tenant's runs or definitions, no slowdown."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from drift_cli.platform import Platform
from hostile.support import VictimCheck

pytestmark = pytest.mark.asyncio(loop_scope="session")

FAILING = {
    "id": "hostile_failing",
    "startNode": "first",
    "states": {
        "first": {"nodeDefinition": {"id": "inline", "type": "SCRIPT", "output": "{% 1 %}"}, "nextNode": "stop"},
        "stop": {"nodeDefinition": {"id": "inline", "type": "FAILURE", "error": "'no'"}, "end": True},
    },
}
# A test run doing real work in the evaluator: 100 visits of a counting loop.
COUNTING: dict[str, Any] = {
    "id": "hostile_counting",
    "startNode": "count",
    "states": {
        "count": {
            "nodeDefinition": {
                "id": "inline",
                "type": "SCRIPT",
                "output": "{% ($global.count ? $global.count : 0) + 1 %}",
            },
            "nextNode": "again",
        },
        "again": {
            "nodeDefinition": {
                "id": "inline",
                "type": "BRANCH",
                "choices": [{"rule": "{% $global.count < 50 %}", "nextNode": "count"}],
                "defaultNode": "done",
            }
        },
        "done": {
            "nodeDefinition": {"id": "inline", "type": "SUCCESS", "disposition": "{% $global.count %}"},
            "end": True,
        },
    },
}


async def test_another_tenants_run_and_definitions_cannot_be_retried_or_tested(
    hostile_platform: Platform, victim: httpx.AsyncClient, attacker: httpx.AsyncClient
) -> None:
    """mallory's retry of globex's FAILED run and its test of a globex-only workflow answer 404; nothing changes."""
    workflow_id = f"victim-failed-{uuid.uuid4().hex[:10]}"
    test = await victim.post("/v3/workflow/test", json={"definition": FAILING})
    assert test.json()["workflowStatus"] == "FAILED", test.text
    started = await victim.post("/v3/workflow/test", json={"workflow": {"id": "ordinary"}, "params": {"values": [1]}})
    assert started.json()["workflowStatus"] == "COMPLETED", started.text
    failed = await victim.post(
        "/v3/workflow/start",
        json={"workflow": {"id": "ordinary"}, "workflowId": workflow_id, "params": {"values": "x"}},
    )
    assert failed.json()["workflowStatus"] == "FAILED", failed.text
    assert (await attacker.put(f"/v3/workflow/retry/{workflow_id}", json={})).status_code == 404
    assert (await attacker.put(f"/v3/workflow/retry/{workflow_id}", json={"fromNode": "sum"})).status_code == 404
    # `ordinary` exists for mallory too (its own copy): a test names the caller's own definitions only.
    own = await attacker.post("/v3/workflow/test", json={"workflow": {"id": "ordinary"}, "params": {"values": [2]}})
    assert own.json()["disposition"] == "TOTAL 2", own.text
    detail = (await victim.get(f"/v3/workflow/{workflow_id}")).json()
    assert detail["workflowStatus"] == "FAILED"
    private = dict(FAILING, id=f"globex_only_{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(
        base_url=hostile_platform.dsl_store_url, headers={"Authorization": "Bearer key-globex"}
    ) as store:
        assert (await store.post("/workflowDefinition", json=private)).status_code == 201
    foreign = await attacker.post("/v3/workflow/test", json={"workflow": {"id": private["id"], "version": "SNAPSHOT"}})
    assert foreign.status_code == 404, foreign.text
    assert (
        await victim.post("/v3/workflow/test", json={"workflow": {"id": private["id"], "version": "SNAPSHOT"}})
    ).json()["workflowStatus"] == "FAILED"


async def test_a_flood_of_test_runs_does_not_slow_another_tenant(
    attacker: httpx.AsyncClient, victim_keeps_completing: VictimCheck
) -> None:
    """Ten looping test runs at once from mallory: globex's ordinary runs keep completing within the deadline."""

    async def flood() -> None:
        answers = await asyncio.gather(
            *(attacker.post("/v3/workflow/test", json={"definition": COUNTING}) for _ in range(10))
        )
        assert all(answer.json()["disposition"] == 50 for answer in answers), [a.text for a in answers]

    times = await victim_keeps_completing(flood())
    assert len(times) >= 3
