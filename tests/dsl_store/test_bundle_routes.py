"""`GET /bundle` (export with the transitive closure) and `POST /bundle` (import, all or nothing, idempotent)."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import AsyncTestClient

from drift_dsl_store.events import Change
from dsl_store.helpers import (
    ACME,
    EXAMPLES,
    GLOBEX,
    RecordingChanges,
    publish_nodes,
    script_node,
    success_node,
    two_step_nodes,
    two_step_workflow,
)

Client = AsyncTestClient[Any]


def _child_flow(workflow_id: str, child: str) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "startNode": "call",
        "states": {
            "call": {
                "nodeDefinition": {"id": "call", "type": "CHILD", "childWorkflowId": child},
                "nextNode": "last",
            },
            "last": {"resourceId": "done", "end": True},
        },
    }


async def _publish_flow(client: Client, body: dict[str, Any], headers: dict[str, str] = ACME) -> None:
    assert (await client.post("/workflowDefinition", json=body, headers=headers)).status_code == 201
    published = await client.post(f"/workflowDefinition/{body['id']}/publishWorkflow", headers=headers)
    assert published.status_code == 200, published.text


async def test_export_holds_the_closure_of_nodes_and_children(client: Client) -> None:
    """Exporting a parent brings its nodes, its CHILD workflow and the child's nodes, each once."""
    await publish_nodes(client, *two_step_nodes(), script_node("unused"))
    await _publish_flow(client, two_step_workflow("child"))
    await _publish_flow(client, _child_flow("parent", "child"))
    await _publish_flow(client, _child_flow("grandparent", "parent"))
    response = await client.get("/bundle", params={"workflowId": "grandparent"}, headers=ACME)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert [w["id"] for w in bundle["workflowDefinitions"]] == ["grandparent", "parent", "child"]
    assert [n["id"] for n in bundle["nodeDefinitions"]] == ["calc", "done"]


async def test_export_of_several_workflows_and_versions(client: Client) -> None:
    """Several workflowId parameters export each; `version` picks the named workflows' version."""
    await publish_nodes(client)
    await _publish_flow(client, two_step_workflow("a", comment="a1"))
    await client.put("/workflowDefinition", json=two_step_workflow("a", comment="a-draft"), headers=ACME)
    await _publish_flow(client, two_step_workflow("b"))
    latest = (await client.get("/bundle", params=[("workflowId", "a"), ("workflowId", "b")], headers=ACME)).json()
    assert [(w["id"], w.get("comment")) for w in latest["workflowDefinitions"]] == [("a", "a1"), ("b", None)]
    draft = (await client.get("/bundle", params={"workflowId": "a", "version": "SNAPSHOT"}, headers=ACME)).json()
    assert draft["workflowDefinitions"][0]["comment"] == "a-draft"


async def test_export_is_tenant_scoped(client: Client) -> None:
    """Another tenant's workflow answers 404; no workflowId at all is refused."""
    await publish_nodes(client)
    await _publish_flow(client, two_step_workflow())
    assert (await client.get("/bundle", params={"workflowId": "flow"}, headers=GLOBEX)).status_code == 404
    assert (await client.get("/bundle", headers=ACME)).status_code == 400


async def test_export_then_import_into_another_tenant_round_trips(client: Client) -> None:
    """A bundle exported from acme imports into globex (published, activated) and exports back equal."""
    await publish_nodes(client)
    await _publish_flow(client, two_step_workflow("child"))
    await _publish_flow(client, _child_flow("parent", "child"))
    exported = (await client.get("/bundle", params={"workflowId": "parent"}, headers=ACME)).json()

    imported = await client.post(
        "/bundle", params={"publish": "true", "activate": "true"}, json=exported, headers=GLOBEX
    )
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"created": ["calc", "done", "parent", "child"], "unchanged": [], "updated": []}
    active = await client.get("/workflowDefinition/parent", params={"version": "ACTIVE"}, headers=GLOBEX)
    assert active.status_code == 200 and active.json()["version"] == "1"
    again = (await client.get("/bundle", params={"workflowId": "parent"}, headers=GLOBEX)).json()
    assert again == exported

    # The same import again changes nothing.
    repeated = await client.post(
        "/bundle", params={"publish": "true", "activate": "true"}, json=exported, headers=GLOBEX
    )
    assert repeated.json() == {"created": [], "unchanged": ["calc", "done", "parent", "child"], "updated": []}
    versions = (await client.get("/workflowDefinition/parent/versions", headers=GLOBEX)).json()
    assert [v["version"] for v in versions] == ["1"]


async def test_import_reports_updates_and_announces_them(client: Client, changes: RecordingChanges) -> None:
    """A changed definition is `updated` (new SNAPSHOT, next version, activated), the others `unchanged`."""
    bundle = {"nodeDefinitions": two_step_nodes(), "workflowDefinitions": [two_step_workflow()]}
    await client.post("/bundle", params={"publish": "true"}, json=bundle, headers=ACME)
    bundle["workflowDefinitions"] = [two_step_workflow(comment="v2")]
    changes.events.clear()
    answer = await client.post("/bundle", params={"publish": "true", "activate": "true"}, json=bundle, headers=ACME)
    assert answer.json() == {"created": [], "unchanged": ["calc", "done"], "updated": ["flow"]}
    active = (await client.get("/workflowDefinition/flow", params={"version": "ACTIVE"}, headers=ACME)).json()
    assert active["version"] == "2" and active["comment"] == "v2"
    announced = [(e.id, e.change, e.version) for e, _ in changes.events]
    assert announced == [
        ("flow", Change.UPDATED, "SNAPSHOT"),
        ("flow", Change.PUBLISHED, "2"),
        ("flow", Change.ACTIVATED, "2"),
    ]


async def test_without_publish_only_snapshots_are_written(client: Client) -> None:
    """publish=false (the default) writes SNAPSHOTs only; activate without anything published is refused."""
    bundle = {"nodeDefinitions": two_step_nodes(), "workflowDefinitions": [two_step_workflow()]}
    answer = await client.post("/bundle", json=bundle, headers=ACME)
    assert answer.status_code == 200 and answer.json()["created"] == ["calc", "done", "flow"]
    assert (await client.get("/workflowDefinition/flow", headers=ACME)).status_code == 404  # no LATEST
    assert (
        await client.get("/workflowDefinition/flow", params={"version": "SNAPSHOT"}, headers=ACME)
    ).status_code == 200
    refused = await client.post("/bundle", params={"activate": "true"}, json=bundle, headers=ACME)
    assert refused.status_code == 422
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/workflowDefinitions/0"]


async def test_an_invalid_bundle_stores_nothing(client: Client, changes: RecordingChanges) -> None:
    """One bad definition among good ones: 422 with pointers into the bundle, and no definition is stored."""
    broken_flow = {**two_step_workflow("broken"), "startNode": "missing"}
    bundle = {
        "nodeDefinitions": [*two_step_nodes(), script_node("bad", output="{% ((( %}")],
        "workflowDefinitions": [two_step_workflow("good"), broken_flow, {**two_step_workflow("good")}],
    }
    answer = await client.post("/bundle", params={"publish": "true", "activate": "true"}, json=bundle, headers=ACME)
    assert answer.status_code == 422
    pointers = {e["pointer"] for e in answer.json()["errors"]}
    assert pointers == {"/nodeDefinitions/2/output", "/workflowDefinitions/1/startNode", "/workflowDefinitions/2/id"}
    for path in ("/nodeDefinition", "/workflowDefinition"):
        assert (await client.get(path, headers=ACME)).json()["items"] == []
    assert changes.events == []


async def test_unresolvable_references_refuse_a_published_import(client: Client) -> None:
    """With publish, a workflow must resolve its nodes from the bundle or the tenant's published ones."""
    bundle = {"nodeDefinitions": [script_node("calc")], "workflowDefinitions": [two_step_workflow()]}
    answer = await client.post("/bundle", params={"publish": "true"}, json=bundle, headers=ACME)
    assert answer.status_code == 422
    assert [e["pointer"] for e in answer.json()["errors"]] == ["/workflowDefinitions/0/states/last/resourceId"]
    assert (await client.get("/nodeDefinition/calc", params={"version": "SNAPSHOT"}, headers=ACME)).status_code == 404
    # The tenant's own published node counts; another tenant's does not.
    await publish_nodes(client, success_node(), headers=GLOBEX)
    assert (await client.post("/bundle", params={"publish": "true"}, json=bundle, headers=ACME)).status_code == 422
    await publish_nodes(client, success_node())
    assert (await client.post("/bundle", params={"publish": "true"}, json=bundle, headers=ACME)).status_code == 200


async def test_bodies_that_are_no_bundle_are_422(client: Client) -> None:
    """Malformed JSON, unknown top-level keys and non-lists answer 422 problems."""
    for content in (b"[1]", b'{"nodes": []}', b'{"nodeDefinitions": {}}', b"{"):
        answer = await client.post("/bundle", content=content, headers={**ACME, "content-type": "application/json"})
        assert answer.status_code == 422, content


async def test_every_example_bundle_imports(client: Client) -> None:
    """The bundles under examples/ import with publish and activate, and a second import changes nothing."""
    for path in sorted(EXAMPLES.rglob("*.json")):
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "workflowDefinitions" not in data:
            continue
        first = await client.post("/bundle", params={"publish": "true", "activate": "true"}, json=data, headers=ACME)
        assert first.status_code == 200, (path, first.text)
        second = await client.post("/bundle", params={"publish": "true", "activate": "true"}, json=data, headers=ACME)
        assert second.json()["created"] == second.json()["updated"] == [], path


async def test_a_bundle_holds_at_most_500_definitions(client: Client) -> None:
    """500 definitions import in one go; 501 are refused with a 422 and nothing is stored."""
    nodes = [script_node(f"n{index:03}") for index in range(500)]
    answer = await client.post("/bundle", params={"publish": "true"}, json={"nodeDefinitions": nodes}, headers=ACME)
    assert answer.status_code == 200 and len(answer.json()["created"]) == 500
    more = {
        "nodeDefinitions": [script_node("extra")],
        "workflowDefinitions": [two_step_workflow(f"w{i}") for i in range(500)],
    }
    refused = await client.post("/bundle", json=more, headers=ACME)
    assert refused.status_code == 422 and "at most 500" in refused.json()["detail"]
    assert (await client.get("/nodeDefinition/extra", params={"version": "SNAPSHOT"}, headers=ACME)).status_code == 404
