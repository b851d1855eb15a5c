"""`DELETE /workflowDefinition/{id}` and `DELETE /nodeDefinition/{id}`: gone everywhere, referenced nodes kept."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from drift_cli.servers import InfraStack
from drift_dsl_store.app import create_app
from drift_dsl_store.events import Change
from dsl_store.helpers import (
    ACME,
    GLOBEX,
    RecordingChanges,
    publish_nodes,
    script_node,
    serving,
    two_instances,
    two_step_nodes,
    two_step_workflow,
)

Client = AsyncTestClient[Any]


async def _published_flow(client: Client, workflow_id: str = "flow", headers: dict[str, str] = ACME) -> None:
    await client.post("/workflowDefinition", json=two_step_workflow(workflow_id), headers=headers)
    published = await client.post(f"/workflowDefinition/{workflow_id}/publishWorkflow", headers=headers)
    assert published.status_code == 200, published.text


async def test_a_deleted_workflow_answers_404_on_every_route(client: Client, changes: RecordingChanges) -> None:
    """After a 204 delete, every version, the versions list, the tree view and a second delete answer 404."""
    await publish_nodes(client)
    await _published_flow(client)
    response = await client.delete("/workflowDefinition/flow", headers=ACME)
    assert response.status_code == 204 and response.content == b""
    for version in ("SNAPSHOT", "LATEST", "ACTIVE", "1"):
        gone = await client.get("/workflowDefinition/flow", params={"version": version}, headers=ACME)
        assert gone.status_code == 404, version
    assert (await client.get("/workflowDefinition/flow/versions", headers=ACME)).status_code == 404
    assert (await client.get("/workflowDefinition/treeView/flow", headers=ACME)).status_code == 404
    assert (await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)).status_code == 404
    assert (await client.delete("/workflowDefinition/flow", headers=ACME)).status_code == 404
    assert [(e.kind, e.id, e.change) for e, _ in changes.events][-1] == ("workflow", "flow", Change.DELETED)


async def test_a_recreated_definition_numbers_on(client: Client) -> None:
    """An id created again after a delete starts from a fresh SNAPSHOT; its versions never reuse a deleted number."""
    await publish_nodes(client)
    await _published_flow(client)
    await client.delete("/workflowDefinition/flow", headers=ACME)
    await _published_flow(client)
    versions = (await client.get("/workflowDefinition/flow/versions", headers=ACME)).json()
    assert [(v["version"], v["active"]) for v in versions] == [("2", True)]
    assert (await client.get("/workflowDefinition/flow", params={"version": "1"}, headers=ACME)).status_code == 404


async def test_a_referenced_node_is_not_deleted(client: Client) -> None:
    """409 names every workflow whose SNAPSHOT, LATEST or ACTIVE refers to the node; the node stays intact."""
    await publish_nodes(client)
    await _published_flow(client, "live")
    await client.post("/workflowDefinition", json=two_step_workflow("draft"), headers=ACME)
    refused = await client.delete("/nodeDefinition/calc", headers=ACME)
    assert refused.status_code == 409
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "draft" in problem["detail"] and "live" in problem["detail"]
    assert sorted(e["message"] for e in problem["errors"]) == [
        "referred to by workflow 'draft'",
        "referred to by workflow 'live'",
    ]
    assert (await client.get("/nodeDefinition/calc", headers=ACME)).status_code == 200

    # Only an older version still refers to it: the delete goes through.
    other = {**two_step_workflow("live"), "states": {"last": {"resourceId": "done", "end": True}}, "startNode": "last"}
    await client.put("/workflowDefinition", json=other, headers=ACME)
    await client.post("/workflowDefinition/live/publishWorkflow", headers=ACME)
    await client.post("/workflowDefinition/live/activate", params={"version": "2"}, headers=ACME)
    await client.delete("/workflowDefinition/draft", headers=ACME)
    assert (await client.delete("/nodeDefinition/calc", headers=ACME)).status_code == 204
    assert (await client.get("/nodeDefinition/calc", params={"version": "SNAPSHOT"}, headers=ACME)).status_code == 404


async def test_a_workflow_cannot_be_published_against_a_deleted_node(client: Client) -> None:
    """Publishing a workflow whose node was deleted answers 422 pointing at the state's resourceId."""
    await publish_nodes(client)
    await client.delete("/nodeDefinition/calc", headers=ACME)
    await client.post("/workflowDefinition", json=two_step_workflow(), headers=ACME)
    refused = await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)
    assert refused.status_code == 422
    assert "/states/first/resourceId" in [e["pointer"] for e in refused.json()["errors"]]


async def test_deletes_are_tenant_scoped(client: Client) -> None:
    """Deleting another tenant's definition answers 404 and leaves it; its referrers are not disclosed."""
    await publish_nodes(client)
    await _published_flow(client)
    assert (await client.delete("/workflowDefinition/flow", headers=GLOBEX)).status_code == 404
    assert (await client.delete("/nodeDefinition/calc", headers=GLOBEX)).status_code == 404
    assert (await client.get("/workflowDefinition/flow", headers=ACME)).status_code == 200
    # Globex's node of the same id is its own: acme's workflow does not hold it.
    await publish_nodes(client, script_node("calc"), headers=GLOBEX)
    assert (await client.delete("/nodeDefinition/calc", headers=GLOBEX)).status_code == 204
    assert (await client.get("/nodeDefinition/calc", headers=ACME)).status_code == 200
    assert (await client.delete("/workflowDefinition/..", headers=ACME)).status_code in (404, 422)


async def test_a_delete_empties_every_instances_cache(tmp_path: Path, infra: InfraStack) -> None:
    """B has the workflow's versions cached (memory and Redis); after A deletes it, B answers 404 for each."""
    async with two_instances(tmp_path, infra) as (settings, a, b, cache_b):
        await publish_nodes(a)  # type: ignore[arg-type]
        await _published_flow(a)  # type: ignore[arg-type]
        for version in ("1", "ACTIVE", "LATEST"):
            cached = await b.get("/workflowDefinition/flow", params={"version": version}, headers=ACME)
            assert cached.status_code == 200
        heard = asyncio.Event()
        cache_b.listeners.append(lambda tenant, kind, name: heard.set() if name == "flow" else None)

        assert (await a.delete("/workflowDefinition/flow", headers=ACME)).status_code == 204
        async with asyncio.timeout(2):
            await heard.wait()
        for version in ("1", "ACTIVE", "LATEST"):
            gone = await b.get("/workflowDefinition/flow", params={"version": version}, headers=ACME)
            assert gone.status_code == 404, version
        # A fresh instance on the same Redis finds no stale version either.
        async with serving(create_app(settings)) as c:
            assert (await c.get("/workflowDefinition/flow", params={"version": "1"}, headers=ACME)).status_code == 404


async def test_a_version_whose_node_was_deleted_cannot_be_activated(client: Client) -> None:
    """Rolling back to a version that refers to a deleted node answers 422 with its pointer; ACTIVE stays."""
    await publish_nodes(client, *two_step_nodes(), script_node("calc2"))
    await _published_flow(client)
    other = two_step_workflow()
    other["states"]["first"]["resourceId"] = "calc2"
    await client.put("/workflowDefinition", json=other, headers=ACME)
    await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)
    await client.post("/workflowDefinition/flow/activate", params={"version": "2"}, headers=ACME)
    assert (await client.delete("/nodeDefinition/calc", headers=ACME)).status_code == 204
    refused = await client.post("/workflowDefinition/flow/activate", params={"version": "1"}, headers=ACME)
    assert refused.status_code == 422
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/states/first/resourceId"]
    active = await client.get("/workflowDefinition/flow", params={"version": "ACTIVE"}, headers=ACME)
    assert active.json()["version"] == "2"
