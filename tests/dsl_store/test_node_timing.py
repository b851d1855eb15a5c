"""retry/timeoutMs a node type cannot honour are refused by the dsl-store with a pointer, inline or standalone."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from dsl_store.helpers import ACME

Client = AsyncTestClient[Any]


async def test_node_definitions_refuse_retry_on_waits_and_timeouts_on_async_children(client: Client) -> None:
    """A WAIT with retry and an ASYNC CHILD with timeoutMs answer 422 pointing at the field; a SYNC CHILD's
    timeoutMs and a WAIT's timeoutMs are stored."""
    wait = {"id": "pause", "type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 5}}
    refused = await client.post("/nodeDefinition", json={**wait, "retry": {"maxAttempts": 3}}, headers=ACME)
    assert refused.status_code == 422
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/retry"]
    child = {"id": "kid", "type": "CHILD", "childWorkflowId": "other", "executionMode": "ASYNC", "timeoutMs": 50}
    refused = await client.post("/nodeDefinition", json=child, headers=ACME)
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/timeoutMs"]
    assert (await client.post("/nodeDefinition", json={**wait, "timeoutMs": 100}, headers=ACME)).status_code == 201
    sync = {**child, "executionMode": "SYNC"}
    assert (await client.post("/nodeDefinition", json=sync, headers=ACME)).status_code == 201


async def test_inline_nodes_are_checked_in_workflows(client: Client) -> None:
    """An inline INSTRUCTION with retry is refused with the pointer into the workflow."""
    body = {
        "id": "flow",
        "startNode": "ask",
        "states": {"ask": {"nodeDefinition": {"id": "ask", "type": "INSTRUCTION", "retry": {}}, "end": True}},
    }
    refused = await client.post("/workflowDefinition", json=body, headers=ACME)
    assert refused.status_code == 422
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/states/ask/nodeDefinition/retry"]
