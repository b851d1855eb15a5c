"""Hostile tenant against definition management: no peeking, no deleting, no slowing the victim down."""

from __future__ import annotations

import uuid

import httpx
import pytest

from hostile.support import ORDINARY, VictimCheck

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_attacker_cannot_list_export_or_delete_the_victims_definitions(
    attacker_store: httpx.AsyncClient, victim_store: httpx.AsyncClient
) -> None:
    """globex's own definitions: mallory's listings never show them; export and deletes answer 404; tokens fail."""
    secret = f"secret_{uuid.uuid4().hex[:8]}"
    node = {"id": secret, "type": "SUCCESS", "disposition": "classified"}
    workflow = {"id": secret, "startNode": "done", "states": {"done": {"resourceId": secret, "end": True}}}
    assert (
        await victim_store.post(
            "/bundle", params={"publish": "true"}, json={"nodeDefinitions": [node], "workflowDefinitions": [workflow]}
        )
    ).status_code == 200

    for path in ("/workflowDefinition", "/nodeDefinition"):
        listed = await attacker_store.get(path, params={"prefix": "secret_", "pageSize": 500})
        assert listed.status_code == 200 and listed.json()["items"] == []
    assert (await attacker_store.get("/bundle", params={"workflowId": secret})).status_code == 404
    assert (await attacker_store.delete(f"/workflowDefinition/{secret}")).status_code == 404
    assert (await attacker_store.delete(f"/nodeDefinition/{secret}")).status_code == 404
    # A bundle naming the victim's node does not resolve it for the attacker.
    probe = {"workflowDefinitions": [{**workflow, "id": "probe"}]}
    refused = await attacker_store.post("/bundle", params={"publish": "true"}, json=probe)
    assert refused.status_code == 422 and "classified" not in refused.text

    victims_token = (await victim_store.get("/nodeDefinition", params={"pageSize": 1})).json()["nextPageToken"]
    assert victims_token is not None
    stolen = await attacker_store.get("/nodeDefinition", params={"pageSize": 1, "pageToken": victims_token})
    assert stolen.status_code == 400 and secret not in stolen.text

    assert (await victim_store.get(f"/workflowDefinition/{secret}")).status_code == 200
    assert (await victim_store.get(f"/nodeDefinition/{secret}")).status_code == 200


async def test_the_attackers_imports_and_deletes_do_not_slow_the_victim(
    attacker_store: httpx.AsyncClient, victim_keeps_completing: VictimCheck
) -> None:
    """mallory imports the largest bundles, lists with filters and deletes its own `ordinary`; globex's runs go on."""
    big = {
        "nodeDefinitions": [
            {"id": f"bulk_{n:03}", "type": "SCRIPT", "output": "{% $sum([1, 2, 3]) %}", "comment": "x" * 200}
            for n in range(500)
        ]
    }

    async def attack() -> None:
        for publish in ("true", "false", "true"):
            answer = await attacker_store.post("/bundle", params={"publish": publish}, json=big)
            assert answer.status_code == 200, answer.text
        for _ in range(3):
            await attacker_store.get("/nodeDefinition", params={"type": "HTTP", "pageSize": 500})
        assert (await attacker_store.delete("/workflowDefinition/ordinary")).status_code == 204
        for node in ORDINARY["nodeDefinitions"]:
            assert (await attacker_store.delete(f"/nodeDefinition/{node['id']}")).status_code == 204
        too_big = {"nodeDefinitions": [*big["nodeDefinitions"], {"id": "one_more", "type": "SCRIPT", "output": 1}]}
        assert (await attacker_store.post("/bundle", json=too_big)).status_code == 422
        again = await attacker_store.post("/bundle", params={"publish": "true", "activate": "true"}, json=ORDINARY)
        assert again.status_code == 200, again.text

    times = await victim_keeps_completing(attack())
    assert times and max(times) < 5.0
