"""`GET /workflowDefinition` and `GET /nodeDefinition`: sorted, filtered, paged, tenant-scoped listings."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from dsl_store.helpers import ACME, GLOBEX, publish_nodes, script_node, success_node, two_step_workflow

Client = AsyncTestClient[Any]


async def _pages(client: Client, path: str, headers: dict[str, str], **params: Any) -> list[list[dict[str, Any]]]:
    pages, token = [], None
    while True:
        query = {**params, **({"pageToken": token} if token else {})}
        response = await client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        token = body["nextPageToken"]
        if token is None:
            return pages


async def test_workflows_are_listed_by_id_with_their_pointers(client: Client) -> None:
    """Each item says comment, latest and active version, whether a SNAPSHOT exists and when it last changed."""
    await publish_nodes(client)
    await client.post("/workflowDefinition", json=two_step_workflow("zeta", comment="draft only"), headers=ACME)
    await client.post("/workflowDefinition", json=two_step_workflow("alpha", comment="v1"), headers=ACME)
    await client.post("/workflowDefinition/alpha/publishWorkflow", headers=ACME)
    await client.put("/workflowDefinition", json=two_step_workflow("alpha", comment="v2"), headers=ACME)
    await client.post("/workflowDefinition/alpha/publishWorkflow", headers=ACME)

    response = await client.get("/workflowDefinition", headers=ACME)
    assert response.status_code == 200
    body = response.json()
    assert body["nextPageToken"] is None
    alpha, zeta = body["items"]
    assert alpha["id"] == "alpha" and zeta["id"] == "zeta"
    assert alpha["comment"] == "v2" and alpha["latestVersion"] == "2" and alpha["activeVersion"] == "1"
    assert alpha["hasSnapshot"] is True and alpha["updatedAt"].endswith("Z")
    assert zeta == {**zeta, "comment": "draft only", "latestVersion": None, "activeVersion": None}
    assert "type" not in alpha


async def test_nodes_are_filtered_by_prefix_and_type(client: Client) -> None:
    """`prefix` keeps ids starting with it; `type` keeps nodes of that type (any case); items carry `type`."""
    await publish_nodes(client, script_node("calc.a"), script_node("calc_b"), success_node("calc-done"))
    await publish_nodes(client, script_node("other"))
    ids = [
        i["id"] for i in (await client.get("/nodeDefinition", params={"prefix": "calc"}, headers=ACME)).json()["items"]
    ]
    assert ids == ["calc-done", "calc.a", "calc_b"]
    typed = (await client.get("/nodeDefinition", params={"type": "script"}, headers=ACME)).json()["items"]
    assert [(i["id"], i["type"]) for i in typed] == [("calc.a", "SCRIPT"), ("calc_b", "SCRIPT"), ("other", "SCRIPT")]
    # `_` is a plain character, not a wildcard.
    assert [
        i["id"] for i in (await client.get("/nodeDefinition", params={"prefix": "calc_"}, headers=ACME)).json()["items"]
    ] == ["calc_b"]


async def test_pages_cover_every_definition_once_even_while_others_are_added(client: Client) -> None:
    """Paging with nextPageToken yields every id once, in order; ids added behind the cursor do not shift pages."""
    for index in range(7):
        await client.post("/nodeDefinition", json=script_node(f"n{index}"), headers=ACME)
    first = (await client.get("/nodeDefinition", params={"pageSize": 3}, headers=ACME)).json()
    assert [i["id"] for i in first["items"]] == ["n0", "n1", "n2"]
    await client.post("/nodeDefinition", json=script_node("a-first"), headers=ACME)  # sorts before the cursor
    rest = await _pages(client, "/nodeDefinition", ACME, pageSize=3)
    seen = [i["id"] for page in rest for i in page]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 8
    second = (
        await client.get("/nodeDefinition", params={"pageSize": 3, "pageToken": first["nextPageToken"]}, headers=ACME)
    ).json()
    assert [i["id"] for i in second["items"]] == ["n3", "n4", "n5"]


async def test_a_type_filter_pages_too(client: Client) -> None:
    """With a type filter, pages are full until the end and hold only that type."""
    for index in range(5):
        await client.post("/nodeDefinition", json=script_node(f"s{index}"), headers=ACME)
        await client.post("/nodeDefinition", json=success_node(f"s{index}x"), headers=ACME)
    pages = await _pages(client, "/nodeDefinition", ACME, pageSize=2, type="SUCCESS")
    assert [len(page) for page in pages] == [2, 2, 1]
    assert {i["type"] for page in pages for i in page} == {"SUCCESS"}


async def test_page_size_bounds_and_bad_tokens_are_refused(client: Client) -> None:
    """pageSize outside 1..500 and tokens that are garbage or for other filters answer 400 problems."""
    for size in (0, 501, -1):
        response = await client.get("/workflowDefinition", params={"pageSize": size}, headers=ACME)
        assert response.status_code == 400, size
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/workflowDefinition", params={"pageSize": 500}, headers=ACME)).status_code == 200
    for index in range(3):
        await client.post("/nodeDefinition", json=script_node(f"n{index}"), headers=ACME)
    token = (await client.get("/nodeDefinition", params={"pageSize": 1}, headers=ACME)).json()["nextPageToken"]
    for bad in ("%%%", "bm9wZQ", token[:-2]):
        response = await client.get("/nodeDefinition", params={"pageToken": bad}, headers=ACME)
        assert response.status_code == 400, bad
    # A token of the node listing is no token of the workflow listing or of another prefix.
    assert (await client.get("/workflowDefinition", params={"pageToken": token}, headers=ACME)).status_code == 400
    assert (
        await client.get("/nodeDefinition", params={"pageToken": token, "prefix": "n"}, headers=ACME)
    ).status_code == 400


async def test_listings_are_tenant_scoped(client: Client) -> None:
    """Another tenant's definitions never show, and its page tokens are refused."""
    await publish_nodes(client)
    await client.post("/workflowDefinition", json=two_step_workflow("acme-flow"), headers=ACME)
    await client.post("/nodeDefinition", json=script_node("theirs-1"), headers=GLOBEX)
    await client.post("/nodeDefinition", json=script_node("theirs-2"), headers=GLOBEX)
    assert (await client.get("/workflowDefinition", headers=GLOBEX)).json() == {"items": [], "nextPageToken": None}
    globex_nodes = (await client.get("/nodeDefinition", headers=GLOBEX)).json()["items"]
    assert [i["id"] for i in globex_nodes] == ["theirs-1", "theirs-2"]
    acme_token = (await client.get("/nodeDefinition", params={"pageSize": 1}, headers=ACME)).json()["nextPageToken"]
    stolen = await client.get("/nodeDefinition", params={"pageSize": 1, "pageToken": acme_token}, headers=GLOBEX)
    assert stolen.status_code == 400
    assert "calc" not in stolen.text


async def test_versions_carry_weights(client: Client) -> None:
    """Each version of `/versions` has a weight: 100 for the ACTIVE one, 0 for the others (no traffic split)."""
    await publish_nodes(client)
    await client.post("/workflowDefinition", json=two_step_workflow(comment="v1"), headers=ACME)
    await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)
    await client.put("/workflowDefinition", json=two_step_workflow(comment="v2"), headers=ACME)
    await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)
    versions = (await client.get("/workflowDefinition/flow/versions", headers=ACME)).json()
    assert [(v["version"], v["active"], v["weight"]) for v in versions] == [("1", True, 100), ("2", False, 0)]
    await client.post("/workflowDefinition/flow/activate", params={"version": "2"}, headers=ACME)
    versions = (await client.get("/workflowDefinition/flow/versions", headers=ACME)).json()
    assert [v["weight"] for v in versions] == [0, 100]
