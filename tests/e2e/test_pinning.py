"""Runs are pinned to the version they resolved at start; activation (and rollback) only steers new starts."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from drift_cli.bundles import dsl_store_client
from drift_cli.platform import Platform
from e2e.definitions import state

pytestmark = pytest.mark.asyncio(loop_scope="session")

ACTIVATION_DELAY_S = 1.0
"""Contract: a new activation takes effect for the next start within a second."""


def _ask(label: str) -> dict[str, Any]:
    return {
        "id": "ask",
        "type": "INSTRUCTION",
        "view": {
            "layoutId": f"{label}_screen",
            "inputOptions": [
                {
                    "id": "decision",
                    "description": "Go on?",
                    "possibleValues": [{"displayValue": "OK", "value": "OK"}],
                }
            ],
        },
        "disposition": f"{label}_WAITING",
    }


def _v1(workflow_id: str) -> dict[str, Any]:
    """Waits at `ask`, then ends at `finish_v1`."""
    states = {
        "ask": state(_ask("V1"), "finish_v1"),
        "finish_v1": state({"id": "f1", "type": "SUCCESS", "disposition": "done on v1"}, end=True),
    }
    return {"id": workflow_id, "startNode": "ask", "states": states}


def _v2(workflow_id: str) -> dict[str, Any]:
    """Waits at `ask` too, then goes another way: `mark_v2`, then `finish_v2`."""
    states = {
        "ask": state(_ask("V2"), "mark_v2"),
        "mark_v2": state({"id": "m2", "type": "SCRIPT", "output": "{% 'marked' %}"}, "finish_v2"),
        "finish_v2": state({"id": "f2", "type": "SUCCESS", "disposition": "done on v2"}, end=True),
    }
    return {"id": workflow_id, "startNode": "ask", "states": states}


def _ok(response: httpx.Response) -> Any:
    assert response.is_success, (response.request.method, response.request.url.path, response.text)
    return response.json()


async def _start(gateway: httpx.AsyncClient, workflow_id: str) -> dict[str, Any]:
    run_id = f"pin-{uuid.uuid4().hex[:12]}"
    body: dict[str, Any] = _ok(
        await gateway.post("/v3/workflow/start", json={"workflow": {"id": workflow_id}, "workflowId": run_id})
    )
    assert body["workflowStatus"] == "WAITING", body
    return body


async def _start_on(gateway: httpx.AsyncClient, workflow_id: str, label: str) -> dict[str, Any]:
    """A new start of the ACTIVE version, which must be the one labelled `label` within the contract's second.

    A start that still resolved the previous version is terminated and the start repeated, until the deadline.
    """
    deadline = time.monotonic() + ACTIVATION_DELAY_S
    while True:
        run = await _start(gateway, workflow_id)
        if run["disposition"] == f"{label}_WAITING" or time.monotonic() > deadline:
            assert run["disposition"] == f"{label}_WAITING", run
            return run
        _ok(await gateway.delete(f"/v3/workflow/terminate/{run['workflowId']}"))


async def _resume(gateway: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    body: dict[str, Any] = _ok(
        await gateway.put(
            f"/v3/workflow/resume/{run_id}", json={"viewResponse": {"selectedOptions": {"decision": "OK"}}}
        )
    )
    return body


async def test_a_waiting_run_finishes_on_its_version_and_activation_steers_only_new_starts(
    platform: Platform, gateway: httpx.AsyncClient
) -> None:
    """A run waiting on v1 finishes on v1's path after v2 is activated; a new start runs v2; after activating v1
    again (rollback) a new start runs v1 once more."""
    workflow_id = f"pinning_{uuid.uuid4().hex[:8]}"
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        _ok(await dsl.post("/workflowDefinition", json=_v1(workflow_id)))
        assert (_ok(await dsl.post(f"/workflowDefinition/{workflow_id}/publishWorkflow")))["version"] == "1"
        _ok(await dsl.post(f"/workflowDefinition/{workflow_id}/activate", params={"version": "1"}))
        first = await _start_on(gateway, workflow_id, "V1")
        assert first["currentNode"] == "ask"

        _ok(await dsl.put("/workflowDefinition", json=_v2(workflow_id)))
        assert (_ok(await dsl.post(f"/workflowDefinition/{workflow_id}/publishWorkflow")))["version"] == "2"
        _ok(await dsl.post(f"/workflowDefinition/{workflow_id}/activate", params={"version": "2"}))

        # The waiting run resolved v1 at its start: it goes on along v1's edges, not v2's.
        finished = await _resume(gateway, first["workflowId"])
        assert (finished["workflowStatus"], finished["disposition"]) == ("COMPLETED", "done on v1"), finished
        context = (_ok(await gateway.get(f"/v3/workflow/{first['workflowId']}")))["context"]
        assert "mark_v2" not in context

        second = await _start_on(gateway, workflow_id, "V2")
        finished = await _resume(gateway, second["workflowId"])
        assert (finished["workflowStatus"], finished["disposition"]) == ("COMPLETED", "done on v2"), finished
        context = (_ok(await gateway.get(f"/v3/workflow/{second['workflowId']}")))["context"]
        assert context["mark_v2"] == "marked"

        # Rollback: v1 is ACTIVE again, so the next start runs it.
        _ok(await dsl.post(f"/workflowDefinition/{workflow_id}/activate", params={"version": "1"}))
        versions = _ok(await dsl.get(f"/workflowDefinition/{workflow_id}/versions"))
        assert [(v["version"], v["active"]) for v in versions] == [("1", True), ("2", False)]
        third = await _start_on(gateway, workflow_id, "V1")
        finished = await _resume(gateway, third["workflowId"])
        assert (finished["workflowStatus"], finished["disposition"]) == ("COMPLETED", "done on v1"), finished
