"""Hostile MAPs: a wide, long fan-out of one tenant leaves another tenant's runs fast; over-wide MAPs are refused."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from hostile.support import VictimCheck

pytestmark = pytest.mark.asyncio(loop_scope="session")

ITEMS = 1_000
FINISH_S = 120.0


def _map_workflow(definition_id: str, max_concurrency: int) -> dict[str, Any]:
    each = {
        "id": "each",
        "type": "MAP",
        "items": f"{{% [1..{ITEMS}] %}}",
        "itemNode": "work",
        "maxConcurrency": max_concurrency,
    }
    work = {"id": "work", "type": "SCRIPT", "output": "{% $sum([1..2000]) + $item %}"}
    done = {"id": "done", "type": "SUCCESS", "disposition": "{% $string($count($global.each)) %}"}
    return {
        "id": definition_id,
        "startNode": "each",
        "states": {
            "each": {"nodeDefinition": each, "nextNode": "done"},
            "work": {"nodeDefinition": work, "end": True},
            "done": {"nodeDefinition": done, "end": True},
        },
    }


async def test_a_wide_map_of_one_tenant_leaves_the_other_fast(
    attacker: httpx.AsyncClient, attacker_store: httpx.AsyncClient, victim_keeps_completing: VictimCheck
) -> None:
    """mallory's MAP over 1,000 items at the widest concurrency runs (in slices) to COMPLETED while globex's
    ordinary runs keep answering within seconds."""
    definition_id = f"map_{uuid.uuid4().hex[:8]}"
    assert (await attacker_store.post("/workflowDefinition", json=_map_workflow(definition_id, 100))).status_code == 201
    assert (await attacker_store.post(f"/workflowDefinition/{definition_id}/publishWorkflow")).status_code == 200
    run_id = f"map-attack-{uuid.uuid4().hex[:8]}"

    async def attack() -> dict[str, Any]:
        started = await attacker.post(
            "/v3/workflow/start",
            json={"workflow": {"id": definition_id}, "workflowId": run_id, "syncTimeoutMs": 100},
        )
        assert started.status_code in (200, 202), started.text[:300]
        # No event reaches this client when the run ends: poll its state with a deadline.
        deadline = time.monotonic() + FINISH_S
        while True:
            answer = await attacker.get(f"/v3/workflow/{run_id}")
            state: dict[str, Any] = answer.json() if answer.status_code == 200 else {}  # 404 until it has started
            assert time.monotonic() < deadline, state
            if state.get("workflowStatus") not in (None, "CREATED", "RUNNING"):
                return state
            await asyncio.sleep(0.5)

    task = asyncio.ensure_future(attack())
    await victim_keeps_completing(task)
    finished = task.result()
    assert (finished["workflowStatus"], finished["disposition"]) == ("COMPLETED", str(ITEMS)), finished


async def test_a_map_wider_than_the_branch_limit_is_refused_with_a_pointer(attacker_store: httpx.AsyncClient) -> None:
    """maxConcurrency past the PARALLEL branch limit never reaches a run: 422 at its pointer."""
    definition_id = f"map_{uuid.uuid4().hex[:8]}"
    answer = await attacker_store.post("/workflowDefinition", json=_map_workflow(definition_id, 100_000))
    assert answer.status_code == 422, answer.text[:300]
    pointers = [error["pointer"] for error in answer.json()["errors"]]
    assert pointers == ["/states/each/nodeDefinition/maxConcurrency"]
