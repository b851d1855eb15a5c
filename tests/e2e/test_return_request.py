"""The contract's return-request example end to end: HTTP nodes, `$enums`, options built by expressions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from drift_cli.platform import Platform
from e2e.stub_api import StubApi

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def orders_api(platform: Platform) -> AsyncIterator[StubApi]:
    """A loopback orders API, published to tenant acme as the enum `ordersApi`."""
    async with (
        StubApi() as api,
        httpx.AsyncClient(base_url=platform.dsl_store_url, headers={"Authorization": "Bearer key-acme"}) as dsl,
    ):
        stored = await dsl.put("/enums/ordersApi", json=api.url)
        assert stored.status_code in {200, 201}, stored.text
        yield api
        await dsl.delete("/enums/ordersApi")


async def test_returnable_order_is_refunded_to_the_chosen_mode(gateway: httpx.AsyncClient, orders_api: StubApi) -> None:
    """fetch_order calls the API from $enums, the options render from its answer, and the refund is created."""
    orders_api.routes[("GET", "/orders/o-1")] = lambda _: (
        200,
        {"returnable": True, "daysSinceDelivery": 3, "amount": 42.5, "items": ["mug"]},
    )
    orders_api.routes[("POST", "/refunds")] = lambda body: (201, {"id": f"r-{body['mode']}"})
    workflow_id = f"ret-{uuid.uuid4().hex[:10]}"
    started = await gateway.post(
        "/v3/workflow/start",
        json={"workflow": {"id": "return_request"}, "workflowId": workflow_id, "params": {"orderId": "o-1"}},
    )
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["workflowStatus"] == "WAITING" and body["currentNode"] == "choose_refund"
    [option] = body["view"]["inputOptions"]
    assert option["description"] == "How should we refund 42.5?"
    fetch = orders_api.calls[0]
    assert fetch.headers["x-request-tenant"] == "acme" and fetch.headers.get("idempotency-key")

    resumed = await gateway.put(
        f"/v3/workflow/resume/{workflow_id}", json={"viewResponse": {"selectedOptions": {"refund_mode": "WALLET"}}}
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["workflowStatus"] == "COMPLETED"
    assert resumed.json()["disposition"] == "REFUND_CREATED r-WALLET"
    refund = orders_api.calls[-1]
    assert refund.json() == {"orderId": "o-1", "mode": "WALLET", "amount": 42.5}


async def test_an_order_outside_the_window_is_explained(gateway: httpx.AsyncClient, orders_api: StubApi) -> None:
    """A late order branches to the policy screen, whose acknowledgement closes the run as NOT_RETURNABLE."""
    orders_api.routes[("GET", "/orders/o-2")] = lambda _: (200, {"returnable": True, "daysSinceDelivery": 90})
    workflow_id = f"ret-{uuid.uuid4().hex[:10]}"
    started = await gateway.post(
        "/v3/workflow/start",
        json={"workflow": {"id": "return_request"}, "workflowId": workflow_id, "params": {"orderId": "o-2"}},
    )
    assert started.json()["currentNode"] == "not_returnable"
    text = started.json()["view"]["inputOptions"][0]["instructions"][0]["templateVariables"]
    assert text == {"orderId": "o-2"}
    closed = await gateway.put(
        f"/v3/workflow/resume/{workflow_id}", json={"viewResponse": {"selectedOptions": {"ack": "OK"}}}
    )
    assert closed.json()["workflowStatus"] == "COMPLETED" and closed.json()["disposition"] == "NOT_RETURNABLE"


async def test_a_failing_orders_api_takes_the_failure_path(gateway: httpx.AsyncClient, orders_api: StubApi) -> None:
    """A 500 from the API, after the node's retries, goes to defaultFailureNode and fails the run with its message."""
    calls = []

    def broken(_: object) -> tuple[int, object]:
        calls.append(1)
        return 500, {"error": "down"}

    orders_api.routes[("GET", "/orders/o-3")] = broken
    workflow_id = f"ret-{uuid.uuid4().hex[:10]}"
    started = await gateway.post(
        "/v3/workflow/start",
        json={"workflow": {"id": "return_request"}, "workflowId": workflow_id, "params": {"orderId": "o-3"}},
    )
    assert started.status_code == 200, started.text
    assert started.json()["workflowStatus"] == "FAILED"
    assert started.json()["errorMessage"] == "return flow failed for order o-3"
    assert len(calls) == 3  # retry.maxAttempts of fetch_order
