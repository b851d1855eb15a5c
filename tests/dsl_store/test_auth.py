"""Authentication, tenant isolation, service-token calls and the public routes."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from dsl_store.helpers import ACME, GLOBEX, SERVICE_TOKEN, publish_nodes, script_node, two_step_workflow

Client = AsyncTestClient[Any]


async def test_missing_or_unknown_token_is_401(client: Client) -> None:
    """Without a bearer token, or with an unknown one, every definition route answers 401."""
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic k-acme"}):
        response = await client.get("/nodeDefinition/calc", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert (await client.post("/nodeDefinition", json=script_node("x"), headers=headers)).status_code == 401


async def test_tenants_never_see_each_other(client: Client) -> None:
    """Another tenant's definition answers 404 exactly like a missing one, and its id stays free."""
    await publish_nodes(client)
    await client.post("/workflowDefinition", json=two_step_workflow(), headers=ACME)
    await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)

    foreign = await client.get("/workflowDefinition/flow", params={"version": "ACTIVE"}, headers=GLOBEX)
    missing = await client.get("/workflowDefinition/nothing", params={"version": "ACTIVE"}, headers=GLOBEX)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["title"] == missing.json()["title"]
    assert (await client.get("/nodeDefinition/calc", headers=GLOBEX)).status_code == 404
    assert (await client.put("/nodeDefinition", json=script_node("calc"), headers=GLOBEX)).status_code == 404
    assert (await client.post("/workflowDefinition/flow/publishWorkflow", headers=GLOBEX)).status_code == 404
    assert (await client.get("/workflowDefinition/flow/versions", headers=GLOBEX)).status_code == 404
    assert (await client.post("/nodeDefinition", json=script_node("calc"), headers=GLOBEX)).status_code == 201
    # globex's workflow cannot resolve acme's published nodes.
    await client.post("/workflowDefinition", json=two_step_workflow(), headers=GLOBEX)
    assert (await client.post("/workflowDefinition/flow/publishWorkflow", headers=GLOBEX)).status_code == 422


async def test_service_token_acts_for_the_named_tenant(client: Client) -> None:
    """The service token with X-Drift-Tenant reads that tenant's definitions; without a valid tenant it is 401."""
    await publish_nodes(client, script_node("calc"))
    service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    as_acme = await client.get("/nodeDefinition/calc", headers={**service, "X-Drift-Tenant": "acme"})
    assert as_acme.status_code == 200
    as_globex = await client.get("/nodeDefinition/calc", headers={**service, "X-Drift-Tenant": "globex"})
    assert as_globex.status_code == 404
    assert (await client.get("/nodeDefinition/calc", headers=service)).status_code == 401
    bad = {**service, "X-Drift-Tenant": "acme.evil"}
    assert (await client.get("/nodeDefinition/calc", headers=bad)).status_code == 401
    # A tenant's own key cannot borrow another tenant through the header.
    assert (await client.get("/nodeDefinition/calc", headers={**GLOBEX, "X-Drift-Tenant": "acme"})).status_code == 404


async def test_public_routes_need_no_token(client: Client) -> None:
    """Health, metrics and the OpenAPI document answer without a token."""
    assert (await client.get("/health/live")).status_code == 200
    assert (await client.get("/health/ready")).json() == {"status": "ready"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "python_info" in metrics.text
    schema = (await client.get("/schema/openapi.json")).json()
    for path in (
        "/nodeDefinition",
        "/nodeDefinition/{definition_id}/publishNode",
        "/workflowDefinition/{definition_id}",
        "/workflowDefinition/{definition_id}/activate",
        "/workflowDefinition/{definition_id}/versions",
        "/workflowDefinition/treeView/{definition_id}",
    ):
        assert path in schema["paths"], path
    assert (await client.get("/schema/swagger")).status_code == 200
