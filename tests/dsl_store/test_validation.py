"""Invalid definitions answer 422 problem details with JSON pointers; oversized bodies 413."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from dsl_store.helpers import ACME, publish_nodes, script_node, success_node, two_step_workflow

Client = AsyncTestClient[Any]


async def _errors(client: Client, route: str, body: Any) -> list[dict[str, str]]:
    response = await client.post(route, json=body, headers=ACME)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["type"], problem["status"]) == ("about:blank", 422)
    return list(problem["errors"])


async def test_unknown_node_type_points_at_type(client: Client) -> None:
    """An unknown node `type` is reported at /type."""
    errors = await _errors(client, "/nodeDefinition", {"id": "x", "type": "TELEPORT"})
    assert [e["pointer"] for e in errors] == ["/type"]


async def test_unknown_field_points_at_the_field(client: Client) -> None:
    """A field the schema does not know is reported at its own pointer."""
    errors = await _errors(client, "/nodeDefinition", {"id": "x", "type": "SCRIPT", "surprise": 1})
    assert [e["pointer"] for e in errors] == ["/surprise"]
    errors = await _errors(
        client,
        "/workflowDefinition",
        {"id": "w", "startNode": "a", "states": {"a": {"resourceId": "n", "end": True, "oops": 1}}},
    )
    assert [e["pointer"] for e in errors] == ["/states/a/oops"]


async def test_invalid_id_and_malformed_json(client: Client) -> None:
    """An id outside [A-Za-z0-9_.-]{1,128} is reported at /id; malformed JSON at the document root."""
    errors = await _errors(client, "/nodeDefinition", {"id": "no spaces", "type": "SCRIPT"})
    assert [e["pointer"] for e in errors] == ["/id"]
    response = await client.post("/nodeDefinition", content=b'{"id": ', headers=ACME)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == ""


async def test_missing_start_node(client: Client) -> None:
    """A workflow without startNode is reported at /startNode."""
    workflow = two_step_workflow()
    del workflow["startNode"]
    errors = await _errors(client, "/workflowDefinition", workflow)
    assert [e["pointer"] for e in errors] == ["/startNode"]


async def test_bad_targets_and_all_faults_at_once(client: Client) -> None:
    """Every fault is reported in one answer: bad nextNode, bad inline branch target, unknown inline type."""
    workflow = {
        "id": "w",
        "startNode": "a",
        "states": {
            "a": {"resourceId": "calc", "nextNode": "nowhere"},
            "b": {
                "nodeDefinition": {
                    "id": "pick",
                    "type": "BRANCH",
                    "choices": [{"rule": "{% true %}", "nextNode": "gone"}],
                    "defaultNode": "lost",
                }
            },
            "c/d": {"resourceId": "done", "end": True, "nextNode": "missing"},
        },
    }
    errors = await _errors(client, "/workflowDefinition", workflow)
    assert {e["pointer"] for e in errors} == {
        "/states/a/nextNode",
        "/states/b/nodeDefinition/choices/0/nextNode",
        "/states/b/nodeDefinition/defaultNode",
        "/states/c~1d/nextNode",
    }
    inline_type = {"id": "w", "startNode": "a", "states": {"a": {"nodeDefinition": {"id": "n", "type": "FOO"}}}}
    errors = await _errors(client, "/workflowDefinition", inline_type)
    assert [e["pointer"] for e in errors] == ["/states/a/nodeDefinition/type"]


async def test_bad_expressions_report_pointer_and_position(client: Client) -> None:
    """A JSONata syntax error is reported at its field, with its position in the message."""
    errors = await _errors(client, "/nodeDefinition", script_node("x", output="{% $params.a + %}"))
    assert [e["pointer"] for e in errors] == ["/output"]
    assert "position" in errors[0]["message"]
    workflow = two_step_workflow()
    workflow["states"]["first"]["parameters"] = {"x": "{% ( %}"}
    errors = await _errors(client, "/workflowDefinition", workflow)
    assert [e["pointer"] for e in errors] == ["/states/first/parameters/x"]
    update = await client.put("/nodeDefinition", json=script_node("x", output="{% [ %}"), headers=ACME)
    assert update.status_code == 422


async def test_publish_reports_unresolvable_references(client: Client) -> None:
    """Publishing resolves every reference among published nodes: an unknown id points at resourceId, a missing
    version of a known node at resourceVersion, each message naming what is published."""
    await publish_nodes(client, success_node())
    await client.post("/nodeDefinition", json=script_node("calc"), headers=ACME)  # a SNAPSHOT only
    workflow = two_step_workflow()
    workflow["states"]["pinned"] = {"resourceId": "done", "resourceVersion": "9", "end": True}
    workflow["states"]["draft"] = {"resourceId": "done", "resourceVersion": "SNAPSHOT", "end": True}
    workflow["states"]["ghost"] = {"resourceId": "nobody", "end": True}
    await client.post("/workflowDefinition", json=workflow, headers=ACME)
    response = await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)
    assert response.status_code == 422
    errors = {e["pointer"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {
        "/states/first/resourceVersion",
        "/states/pinned/resourceVersion",
        "/states/draft/resourceVersion",
        "/states/ghost/resourceId",
    }
    assert (
        errors["/states/first/resourceVersion"] == "node 'calc' has no published version 'LATEST' (published: none yet)"
    )
    assert errors["/states/pinned/resourceVersion"] == "node 'done' has no published version '9' (published: 1)"
    assert errors["/states/ghost/resourceId"] == "node 'nobody' does not exist"
    assert (await client.get("/workflowDefinition/flow/versions", headers=ACME)).json() == []


async def test_publish_checks_edges_of_referenced_branches(client: Client) -> None:
    """A referenced BRANCH whose targets are not states of the workflow fails the publish."""
    branch = {"id": "route", "type": "BRANCH", "choices": [{"rule": "{% true %}", "nextNode": "yes"}]}
    await publish_nodes(client, branch, success_node())
    workflow = {
        "id": "w",
        "startNode": "route",
        "states": {"route": {"resourceId": "route"}, "done": {"resourceId": "done", "end": True}},
    }
    await client.post("/workflowDefinition", json=workflow, headers=ACME)
    response = await client.post("/workflowDefinition/w/publishWorkflow", headers=ACME)
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/states/route/resourceId"]


async def test_bodies_over_one_mebibyte_are_413(client: Client) -> None:
    """A body over 1 MiB answers 413 as problem details, before any decoding."""
    big = script_node("big", comment="x" * (1024 * 1024))
    response = await client.post("/nodeDefinition", json=big, headers=ACME)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    near = script_node("near", comment="x" * (1024 * 1024 - 200))
    assert (await client.post("/nodeDefinition", json=near, headers=ACME)).status_code == 201


async def test_unknown_types_and_fields_are_all_reported_with_the_graph_faults(client: Client) -> None:
    """Several unknown types and fields, a decoding fault and graph faults come back together in one 422."""
    workflow = {
        "id": "w",
        "startNode": "ghost",
        "colour": "red",
        "states": {
            "a": {"nodeDefinition": {"id": "n1", "type": "TELEPORT"}, "nextNode": "b"},
            "b": {"nodeDefinition": {"id": "n2", "type": "SCRIPT", "outptu": "{% 1 %}"}, "nextNode": "nowhere"},
            "c": {"resourceId": "done", "end": "yes", "retries": 3},
            "d": {"nodeDefinition": {"id": "n3", "type": "HTTP", "request": {"verb": "GET"}}, "end": True},
        },
    }
    errors = await _errors(client, "/workflowDefinition", workflow)
    assert {e["pointer"] for e in errors} == {
        "/colour",
        "/states/a/nodeDefinition/type",
        "/states/b/nodeDefinition/outptu",
        "/states/c/retries",
        "/states/d/nodeDefinition/request/verb",
        "/states/c/end",
        "/startNode",
        "/states/b/nextNode",
    }
    by_pointer = {e["pointer"]: e["message"] for e in errors}
    assert "TELEPORT" in by_pointer["/states/a/nodeDefinition/type"]
    assert "bool" in by_pointer["/states/c/end"]


async def test_node_with_several_unknown_fields(client: Client) -> None:
    """A node with unknown fields at several depths, a bad value and a bad expression reports all of them."""
    node = script_node("x", output="{% 1 + %}", extra=1, retry={"maxAttempts": 0, "jitter": True})
    errors = await _errors(client, "/nodeDefinition", node)
    assert {e["pointer"] for e in errors} == {"/extra", "/retry/jitter", "/retry/maxAttempts", "/output"}


async def test_parallel_escape_and_missing_terminal_are_refused(client: Client) -> None:
    """A PARALLEL branch reaching the continuation and a graph without terminal answer 422 with pointers."""
    workflow = {
        "id": "w",
        "startNode": "fork",
        "states": {
            "fork": {
                "nodeDefinition": {"id": "p", "type": "PARALLEL", "branches": ["left"]},
                "nextNode": "join",
            },
            "left": {"resourceId": "calc", "nextNode": "join"},
            "join": {"resourceId": "done", "end": True},
        },
    }
    errors = await _errors(client, "/workflowDefinition", workflow)
    assert [e["pointer"] for e in errors] == ["/states/fork/nodeDefinition/branches/0"]
    looping = {
        "id": "w",
        "startNode": "a",
        "states": {"a": {"nodeDefinition": script_node("s"), "nextNode": "a"}},
    }
    errors = await _errors(client, "/workflowDefinition", looping)
    assert [e["pointer"] for e in errors] == ["/states"]


async def test_publish_checks_terminals_and_parallel_branches_of_referenced_nodes(client: Client) -> None:
    """At publish, referenced nodes count: SCRIPT-only leaves give no terminal, and a referenced PARALLEL's branch
    that runs into the continuation escapes; both are reported in one 422."""
    fork = {"id": "fork", "type": "PARALLEL", "branches": ["left"]}
    await publish_nodes(client, script_node("calc"), fork)
    workflow = {
        "id": "w",
        "startNode": "split",
        "states": {
            "split": {"resourceId": "fork", "nextNode": "after"},
            "left": {"resourceId": "calc", "nextNode": "after"},
            "after": {"resourceId": "calc"},
        },
    }
    created = await client.post("/workflowDefinition", json=workflow, headers=ACME)
    assert created.status_code == 201  # unresolved references may still be terminals
    response = await client.post("/workflowDefinition/w/publishWorkflow", headers=ACME)
    assert response.status_code == 422
    errors = {e["pointer"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"/states", "/states/split/resourceId"}
    assert "terminal" in errors["/states"] and "'after'" in errors["/states/split/resourceId"]
