"""Node inlining for the dispatcher (enrichNodeDefinition) and the treeView drawings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from litestar.testing import AsyncTestClient

from dsl_store.helpers import ACME, SERVICE_TOKEN, publish_nodes, script_node, success_node, two_step_workflow

Client = AsyncTestClient[Any]
DISPATCHER = {"Authorization": f"Bearer {SERVICE_TOKEN}", "X-Drift-Tenant": "acme"}


async def _published_flow(client: Client) -> None:
    await publish_nodes(client, script_node("calc", output="{% 1 %}"), success_node())
    await client.put("/nodeDefinition", json=script_node("calc", output="{% 2 %}"), headers=ACME)
    await client.post("/nodeDefinition/calc/publishNode", headers=ACME)  # calc is now at 2
    workflow = two_step_workflow()
    workflow["states"]["last"]["resourceVersion"] = "1"
    workflow["states"]["inline"] = {"nodeDefinition": success_node("inline_done"), "end": True}
    await client.post("/workflowDefinition", json=workflow, headers=ACME)
    assert (await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)).status_code == 200


async def test_enrich_inlines_each_node_at_its_concrete_version(client: Client) -> None:
    """ACTIVE with enrichNodeDefinition inlines every referenced node with its concrete version number."""
    await _published_flow(client)
    response = await client.get(
        "/workflowDefinition/flow", params={"version": "ACTIVE", "enrichNodeDefinition": "true"}, headers=DISPATCHER
    )
    assert response.status_code == 200
    states = response.json()["states"]
    assert states["first"]["nodeDefinition"] == {"id": "calc", "type": "SCRIPT", "version": "2", "output": "{% 2 %}"}
    assert states["first"]["resourceId"] == "calc"
    assert states["last"]["nodeDefinition"] == {"id": "done", "type": "SUCCESS", "version": "1", "disposition": "OK"}
    assert states["inline"]["nodeDefinition"] == {"id": "inline_done", "type": "SUCCESS", "disposition": "OK"}
    assert response.json()["version"] == "1"
    plain = await client.get("/workflowDefinition/flow", params={"version": "ACTIVE"}, headers=DISPATCHER)
    assert "nodeDefinition" not in plain.json()["states"]["first"]


async def test_enrich_of_a_draft_with_unpublished_nodes_is_422(client: Client) -> None:
    """A SNAPSHOT referencing an unpublished node cannot be enriched: 422 pointing at the state."""
    await client.post("/nodeDefinition", json=script_node("calc"), headers=ACME)
    await publish_nodes(client, success_node())
    await client.post("/workflowDefinition", json=two_step_workflow(), headers=ACME)
    response = await client.get(
        "/workflowDefinition/flow", params={"version": "SNAPSHOT", "enrichNodeDefinition": "true"}, headers=ACME
    )
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/states/first/resourceVersion"]


async def test_tree_view_mermaid_svg_and_png(client: Client) -> None:
    """treeView draws a Mermaid flowchart, a well-formed SVG and a PNG; an unknown format answers 422."""
    await _published_flow(client)
    mermaid = await client.get("/workflowDefinition/treeView/flow", params={"format": "mermaid"}, headers=ACME)
    assert mermaid.status_code == 200
    assert mermaid.headers["content-type"].startswith("text/plain")
    assert mermaid.text.startswith("flowchart TD\n")
    assert "s0 --> s1" in mermaid.text and "calc@LATEST" in mermaid.text

    drawing = await client.get("/workflowDefinition/treeView/flow", headers=ACME)
    assert drawing.status_code == 200
    assert drawing.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(drawing.text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [element.text for element in root.iter("{http://www.w3.org/2000/svg}text")]
    assert {"first", "last", "inline"} <= set(texts)

    png = await client.get("/workflowDefinition/treeView/flow", params={"format": "png"}, headers=ACME)
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    gif = await client.get("/workflowDefinition/treeView/flow", params={"format": "gif"}, headers=ACME)
    assert gif.status_code == 422
    assert "gif" in gif.json()["detail"]
    assert (await client.get("/workflowDefinition/treeView/ghost", headers=ACME)).status_code == 404
