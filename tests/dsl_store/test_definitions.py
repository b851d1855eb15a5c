"""CRUD and versioning of node and workflow definitions."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from dsl_store.helpers import ACME, RecordingChanges, publish_nodes, script_node, two_step_workflow

Client = AsyncTestClient[Any]


async def test_create_answers_201_with_the_snapshot(client: Client) -> None:
    """POST stores the SNAPSHOT, ignores the body's version and answers 201 with a Location."""
    response = await client.post("/nodeDefinition", json=script_node("calc", version="7"), headers=ACME)
    assert response.status_code == 201
    assert response.json() == {"id": "calc", "type": "SCRIPT", "version": "SNAPSHOT", "output": "{% $params.x %}"}
    assert response.headers["location"] == "/nodeDefinition/calc?version=SNAPSHOT"
    fetched = await client.get("/nodeDefinition/calc", params={"version": "SNAPSHOT"}, headers=ACME)
    assert fetched.json() == response.json()


async def test_create_existing_id_is_409(client: Client) -> None:
    """A second POST of the same id answers 409, even after it was published."""
    await publish_nodes(client, script_node("calc"))
    response = await client.post("/nodeDefinition", json=script_node("calc"), headers=ACME)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 409


async def test_put_replaces_the_snapshot_and_404s_unknown_ids(client: Client) -> None:
    """PUT replaces the SNAPSHOT of an existing id and answers 404 for an id never created."""
    missing = await client.put("/nodeDefinition", json=script_node("ghost"), headers=ACME)
    assert missing.status_code == 404
    assert missing.json()["type"] == "about:blank"
    await client.post("/nodeDefinition", json=script_node("calc"), headers=ACME)
    replaced = await client.put("/nodeDefinition", json=script_node("calc", output="{% 2 %}"), headers=ACME)
    assert replaced.status_code == 200
    assert replaced.json()["output"] == "{% 2 %}"
    assert replaced.json()["version"] == "SNAPSHOT"


async def test_publish_assigns_increasing_numbers_and_latest_follows(client: Client) -> None:
    """Each publish of a changed SNAPSHOT freezes the next number; LATEST is the highest one."""
    await client.post("/nodeDefinition", json=script_node("calc", output="{% 1 %}"), headers=ACME)
    first = await client.post("/nodeDefinition/calc/publishNode", headers=ACME)
    assert first.status_code == 200
    assert first.json()["version"] == "1"
    await client.put("/nodeDefinition", json=script_node("calc", output="{% 2 %}"), headers=ACME)
    second = await client.post("/nodeDefinition/calc/publishNode", headers=ACME)
    assert second.json()["version"] == "2"
    latest = await client.get("/nodeDefinition/calc", headers=ACME)
    assert latest.json() == {"id": "calc", "type": "SCRIPT", "version": "2", "output": "{% 2 %}"}
    explicit = await client.get("/nodeDefinition/calc", params={"version": "LATEST"}, headers=ACME)
    assert explicit.json() == latest.json()


async def test_published_versions_are_immutable(client: Client) -> None:
    """Changing the SNAPSHOT after publishing leaves the published version exactly as it was."""
    await client.post("/nodeDefinition", json=script_node("calc", output="{% 1 %}"), headers=ACME)
    published = (await client.post("/nodeDefinition/calc/publishNode", headers=ACME)).json()
    await client.put("/nodeDefinition", json=script_node("calc", output="{% 99 %}", name="changed"), headers=ACME)
    again = await client.get("/nodeDefinition/calc", params={"version": "1"}, headers=ACME)
    assert again.json() == published
    snapshot = await client.get("/nodeDefinition/calc", params={"version": "SNAPSHOT"}, headers=ACME)
    assert snapshot.json()["output"] == "{% 99 %}"


async def test_publishing_an_unchanged_snapshot_is_idempotent(client: Client) -> None:
    """Publishing a SNAPSHOT equal to LATEST answers LATEST and spends no new number."""
    await client.post("/nodeDefinition", json=script_node("calc"), headers=ACME)
    first = await client.post("/nodeDefinition/calc/publishNode", headers=ACME)
    again = await client.post("/nodeDefinition/calc/publishNode", headers=ACME)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert (await client.get("/nodeDefinition/calc", params={"version": "2"}, headers=ACME)).status_code == 404


async def test_publish_without_snapshot_is_404(client: Client) -> None:
    """Publishing an id that was never created answers 404."""
    assert (await client.post("/nodeDefinition/ghost/publishNode", headers=ACME)).status_code == 404
    assert (await client.post("/workflowDefinition/ghost/publishWorkflow", headers=ACME)).status_code == 404


async def test_unknown_versions_are_404(client: Client) -> None:
    """LATEST before any publish, absent numbers, ACTIVE of a node and nonsense versions all answer 404."""
    await client.post("/nodeDefinition", json=script_node("calc"), headers=ACME)
    for version in ("LATEST", "1", "ACTIVE", "bogus", "0", "-1"):
        response = await client.get("/nodeDefinition/calc", params={"version": version}, headers=ACME)
        assert response.status_code == 404, version
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/nodeDefinition/ghost", headers=ACME)).status_code == 404


async def test_workflow_versions_activate_and_rollback(client: Client) -> None:
    """The first publish becomes ACTIVE; later ones wait for activate; activating an older one rolls back."""
    await publish_nodes(client)
    await client.post("/workflowDefinition", json=two_step_workflow(comment="v1"), headers=ACME)
    assert (await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)).json()["version"] == "1"
    await client.put("/workflowDefinition", json=two_step_workflow(comment="v2"), headers=ACME)
    assert (await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)).json()["version"] == "2"

    active = await client.get("/workflowDefinition/flow", params={"version": "ACTIVE"}, headers=ACME)
    assert (active.json()["version"], active.json()["comment"]) == ("1", "v1")
    latest = await client.get("/workflowDefinition/flow", headers=ACME)
    assert latest.json()["version"] == "2"

    activated = await client.post("/workflowDefinition/flow/activate", params={"version": "2"}, headers=ACME)
    assert activated.status_code == 200
    assert activated.json() == {"id": "flow", "version": "2", "active": True}
    active = await client.get("/workflowDefinition/flow", params={"version": "ACTIVE"}, headers=ACME)
    assert active.json()["comment"] == "v2"

    await client.post("/workflowDefinition/flow/activate", params={"version": "1"}, headers=ACME)
    versions = (await client.get("/workflowDefinition/flow/versions", headers=ACME)).json()
    assert [(v["version"], v["active"]) for v in versions] == [("1", True), ("2", False)]
    assert all(v["publishedAt"].endswith("Z") for v in versions)
    active = await client.get("/workflowDefinition/flow", params={"version": "ACTIVE"}, headers=ACME)
    assert active.json()["comment"] == "v1"


async def test_activate_rejects_unpublished_and_non_numeric_versions(client: Client) -> None:
    """activate answers 404 for a version that is not published and 422 for one that is not a number."""
    await publish_nodes(client)
    await client.post("/workflowDefinition", json=two_step_workflow(), headers=ACME)
    assert (
        await client.post("/workflowDefinition/flow/activate", params={"version": "1"}, headers=ACME)
    ).status_code == 404
    await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)
    assert (
        await client.post("/workflowDefinition/flow/activate", params={"version": "5"}, headers=ACME)
    ).status_code == 404
    bad = await client.post("/workflowDefinition/flow/activate", params={"version": "LATEST"}, headers=ACME)
    assert bad.status_code == 422
    assert (
        await client.post("/workflowDefinition/ghost/activate", params={"version": "1"}, headers=ACME)
    ).status_code == 404


async def test_versions_of_unknown_or_unpublished_workflows(client: Client) -> None:
    """versions lists nothing for an unpublished workflow and answers 404 for an unknown one."""
    await client.post("/workflowDefinition", json=two_step_workflow(), headers=ACME)
    assert (await client.get("/workflowDefinition/flow/versions", headers=ACME)).json() == []
    assert (await client.get("/workflowDefinition/ghost/versions", headers=ACME)).status_code == 404


async def test_changes_are_announced(client: Client, changes: RecordingChanges) -> None:
    """Create, update, publish and activate each announce a definition-change event."""
    await publish_nodes(client)
    await client.post("/workflowDefinition", json=two_step_workflow(), headers=ACME)
    await client.put("/workflowDefinition", json=two_step_workflow(comment="again"), headers=ACME)
    await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)
    await client.post("/workflowDefinition/flow/activate", params={"version": "1"}, headers=ACME)
    seen = [(e.kind, e.id, e.version, str(e.change)) for e, _ in changes.events if e.kind == "workflow"]
    assert seen == [
        ("workflow", "flow", "SNAPSHOT", "updated"),
        ("workflow", "flow", "SNAPSHOT", "updated"),
        ("workflow", "flow", "1", "published"),
        ("workflow", "flow", "1", "activated"),
        ("workflow", "flow", "1", "activated"),
    ]
    assert all(e.tenant == "acme" for e, _ in changes.events)
