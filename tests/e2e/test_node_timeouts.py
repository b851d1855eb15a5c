"""A human step with a deadline, through the gateway: an INSTRUCTION nobody answers within timeoutMs fails
into the failure path, and a resume after that is refused."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from drift_cli.bundles import dsl_store_client
from drift_cli.platform import Platform

pytestmark = pytest.mark.asyncio(loop_scope="session")

SETTLE_S = 15.0


def _ok(response: httpx.Response) -> Any:
    assert response.is_success, (response.request.method, response.request.url.path, response.text)
    return response.json()


def _approval(workflow_id: str) -> dict[str, Any]:
    ask = {
        "id": "approve",
        "type": "INSTRUCTION",
        "timeoutMs": 1500,
        "view": {"inputOptions": [{"id": "ok", "possibleValues": [{"value": "yes"}]}]},
    }
    escalate = {"id": "escalate", "type": "FAILURE", "error": "{% 'escalated: ' & $global.lastError.message %}"}
    done = {"id": "done", "type": "SUCCESS", "disposition": "APPROVED"}
    return {
        "id": workflow_id,
        "startNode": "approve",
        "defaultFailureNode": "escalate",
        "states": {
            "approve": {"nodeDefinition": ask, "nextNode": "done"},
            "done": {"nodeDefinition": done, "end": True},
            "escalate": {"nodeDefinition": escalate, "end": True},
        },
    }


async def test_unanswered_instruction_fails_to_the_failure_path(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """The run waits WAITING, then after timeoutMs goes FAILED through defaultFailureNode; a late resume is 409."""
    workflow_id = f"deadline_{uuid.uuid4().hex[:8]}"
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        _ok(await dsl.post("/workflowDefinition", json=_approval(workflow_id)))
        _ok(await dsl.post(f"/workflowDefinition/{workflow_id}/publishWorkflow"))
    run_id = f"deadline-{uuid.uuid4().hex[:12]}"
    started = _ok(
        await gateway.post("/v3/workflow/start", json={"workflow": {"id": workflow_id}, "workflowId": run_id})
    )
    assert started["workflowStatus"] == "WAITING", started
    # No event tells a poller the deadline passed: poll the run's state with a deadline.
    deadline = time.monotonic() + SETTLE_S
    while (state := _ok(await gateway.get(f"/v3/workflow/{run_id}")))["workflowStatus"] == "WAITING":
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.2)
    assert state["workflowStatus"] == "FAILED", state
    assert state["errorMessage"] == "escalated: nobody answered within timeoutMs (1500 ms)"
    late = await gateway.put(f"/v3/workflow/resume/{run_id}", json={"viewResponse": {"selectedOptions": {"ok": "yes"}}})
    assert late.status_code == 409, late.text
