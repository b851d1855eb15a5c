"""MAP on the real stack (contract 11): stored, validated and drawn by the dsl-store, run through the gateway."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from drift_cli.bundles import dsl_store_client
from drift_cli.platform import Platform

pytestmark = pytest.mark.asyncio(loop_scope="session")

THOUSAND = 1_000


def _ok(response: httpx.Response) -> Any:
    assert response.is_success, (response.request.method, response.request.url.path, response.text)
    return response.json()


def _fan_out(workflow_id: str, item_node: str = "price", tolerated: int = 0) -> dict[str, Any]:
    """MAP over `params.lines`: each line priced (quantity x unit, failing on a negative quantity), then summed."""
    return {
        "id": workflow_id,
        "startNode": "each_line",
        "states": {
            "each_line": {
                "nodeDefinition": {
                    "id": "each_line",
                    "type": "MAP",
                    "items": "{% $global.params.lines %}",
                    "itemNode": item_node,
                    "maxConcurrency": 10,
                    "toleratedFailures": tolerated,
                },
                "nextNode": "total",
            },
            "price": {
                "nodeDefinition": {
                    "id": "price",
                    "type": "SCRIPT",
                    "output": "{% $item.qty < 0 ? $error('negative quantity') "
                    ": {'line': $index, 'amount': $item.qty * $item.unit} %}",
                },
                "end": True,
            },
            "total": {
                "nodeDefinition": {
                    "id": "total",
                    "type": "SUCCESS",
                    "disposition": "{% $string($sum($global.each_line[$exists(amount)].amount)) %}",
                },
                "end": True,
            },
        },
    }


async def _define(platform: Platform, body: dict[str, Any]) -> None:
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        _ok(await dsl.post("/workflowDefinition", json=body))
        _ok(await dsl.post(f"/workflowDefinition/{body['id']}/publishWorkflow"))


async def _start(gateway: httpx.AsyncClient, workflow_id: str, lines: list[dict[str, int]]) -> dict[str, Any]:
    body = {"workflow": {"id": workflow_id}, "workflowId": f"map-{uuid.uuid4().hex[:12]}", "params": {"lines": lines}}
    answer: dict[str, Any] = _ok(await gateway.post("/v3/workflow/start", json=body))
    return answer


async def test_a_thousand_item_map_keeps_item_order(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """A MAP over 1,000 order lines completes through the gateway; each entry is its line's, in line order."""
    workflow_id = f"map_{uuid.uuid4().hex[:8]}"
    await _define(platform, _fan_out(workflow_id))
    lines = [{"qty": n % 7, "unit": n} for n in range(THOUSAND)]
    run = await _start(gateway, workflow_id, lines)
    assert run["workflowStatus"] == "COMPLETED", run
    assert run["disposition"] == str(sum((n % 7) * n for n in range(THOUSAND)))
    context = _ok(await gateway.get(f"/v3/workflow/{run['workflowId']}"))["context"]
    assert context["each_line"] == [{"line": n, "amount": (n % 7) * n} for n in range(THOUSAND)]


async def test_tolerated_failures_and_beyond(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """Failed lines within toleratedFailures are error entries; one more fails the run."""
    workflow_id = f"map_{uuid.uuid4().hex[:8]}"
    await _define(platform, _fan_out(workflow_id, tolerated=1))
    run = await _start(gateway, workflow_id, [{"qty": 2, "unit": 5}, {"qty": -1, "unit": 5}, {"qty": 1, "unit": 3}])
    assert (run["workflowStatus"], run["disposition"]) == ("COMPLETED", "13"), run
    context = _ok(await gateway.get(f"/v3/workflow/{run['workflowId']}"))["context"]
    assert context["each_line"][1] == {"error": "output: negative quantity"}

    failed = await _start(gateway, workflow_id, [{"qty": -1, "unit": 1}, {"qty": -2, "unit": 1}])
    assert failed["workflowStatus"] == "FAILED", failed
    assert failed["errorMessage"].startswith("2 items failed, more than toleratedFailures (1)")


async def test_dsl_store_validates_and_draws_map(platform: Platform) -> None:
    """A MAP whose itemNode is not a state, or whose item branch escapes, is refused with a pointer; the tree
    view draws the item edge."""
    workflow_id = f"map_{uuid.uuid4().hex[:8]}"
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        missing = await dsl.post("/workflowDefinition", json=_fan_out(workflow_id, item_node="nowhere"))
        assert missing.status_code == 422
        assert [e["pointer"] for e in missing.json()["errors"]] == ["/states/each_line/nodeDefinition/itemNode"]
        escaping = _fan_out(workflow_id, item_node="total")
        refused = await dsl.post("/workflowDefinition", json=escaping)
        assert refused.status_code == 422
        assert "/states/each_line/nodeDefinition/itemNode" in [e["pointer"] for e in refused.json()["errors"]]
        _ok(await dsl.post("/workflowDefinition", json=_fan_out(workflow_id)))
        drawn = await dsl.get(
            f"/workflowDefinition/treeView/{workflow_id}", params={"version": "SNAPSHOT", "format": "mermaid"}
        )
        assert drawn.status_code == 200
        assert "each item" in drawn.text
