"""`POST /workflowDefinition/validate`: the checks of publish on a body, storing nothing."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from dsl_store.helpers import (
    ACME,
    GLOBEX,
    RecordingChanges,
    publish_nodes,
    script_node,
    success_node,
    two_step_workflow,
)

Client = AsyncTestClient[Any]


async def test_a_valid_workflow_is_reported_with_its_disconnected_states(
    client: Client, changes: RecordingChanges
) -> None:
    """200 {"valid": true, "disconnectedStates"}; nothing is stored and nothing announced."""
    await publish_nodes(client)
    events = len(changes.events)
    workflow = two_step_workflow()
    workflow["states"]["spare"] = {"nodeDefinition": script_node("spare-node"), "end": True}
    response = await client.post("/workflowDefinition/validate", json=workflow, headers=ACME)
    assert response.status_code == 200, response.text
    assert response.json() == {"valid": True, "disconnectedStates": ["spare"]}
    assert (
        await client.get("/workflowDefinition/flow", params={"version": "SNAPSHOT"}, headers=ACME)
    ).status_code == 404
    assert len(changes.events) == events


async def test_inline_nodes_need_nothing_stored(client: Client) -> None:
    """A workflow whose nodes are all inline validates in a tenant that has no definitions at all."""
    workflow = {
        "id": "inline",
        "startNode": "a",
        "states": {
            "a": {"nodeDefinition": script_node("x", output="{% 1 + 1 %}"), "nextNode": "b"},
            "b": {"nodeDefinition": success_node("y"), "end": True},
        },
    }
    response = await client.post("/workflowDefinition/validate", json=workflow, headers=GLOBEX)
    assert response.status_code == 200 and response.json()["valid"] is True


async def test_faults_are_those_of_publish_with_pointers(client: Client) -> None:
    """Unresolvable references, bad targets and bad expressions answer 422 with one pointer each."""
    await publish_nodes(client, success_node())
    workflow = {
        "id": "broken",
        "startNode": "first",
        "states": {
            "first": {"resourceId": "calc", "nextNode": "nowhere"},
            "bad": {"nodeDefinition": script_node("b", output="{% $$$( %}"), "nextNode": "last"},
            "last": {"resourceId": "done", "end": True},
        },
    }
    response = await client.post("/workflowDefinition/validate", json=workflow, headers=ACME)
    assert response.status_code == 422
    pointers = {error["pointer"] for error in response.json()["errors"]}
    assert {"/states/first/nextNode", "/states/bad/nodeDefinition/output"} <= pointers

    unresolved = {
        "id": "unresolved",
        "startNode": "first",
        "states": {
            "first": {"resourceId": "calc", "nextNode": "last"},
            "last": {"resourceId": "done", "resourceVersion": "9", "end": True},
        },
    }
    response = await client.post("/workflowDefinition/validate", json=unresolved, headers=ACME)
    assert response.status_code == 422
    pointers = {error["pointer"] for error in response.json()["errors"]}
    assert pointers == {"/states/first/resourceId", "/states/last/resourceVersion"}


async def test_only_the_callers_nodes_resolve(client: Client) -> None:
    """A node published by another tenant does not make a reference valid."""
    await publish_nodes(client, headers=GLOBEX)
    response = await client.post("/workflowDefinition/validate", json=two_step_workflow(), headers=ACME)
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {"/states/first/resourceId", "/states/last/resourceId"}


async def test_a_body_that_is_no_workflow_is_422(client: Client) -> None:
    """Malformed JSON and unknown fields answer 422 with pointers, as create does."""
    garbled = await client.post(
        "/workflowDefinition/validate", content=b"{not json", headers={**ACME, "content-type": "application/json"}
    )
    assert garbled.status_code == 422
    unknown = await client.post("/workflowDefinition/validate", json={**two_step_workflow(), "extra": 1}, headers=ACME)
    assert unknown.status_code == 422 and "/extra" in {e["pointer"] for e in unknown.json()["errors"]}
