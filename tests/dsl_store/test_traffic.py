"""`PUT /workflowDefinition/{id}/traffic`: weighted ACTIVE between published versions (contract 12)."""

from __future__ import annotations

import collections
from typing import Any

from litestar.testing import AsyncTestClient

from drift_schema.traffic import pick
from dsl_store.helpers import ACME, GLOBEX, RecordingChanges, publish_nodes, two_step_workflow

Client = AsyncTestClient[Any]


async def _three_versions(client: Client, workflow_id: str = "flow") -> None:
    """Versions 1, 2 and 3 published (1 ACTIVE), and a SNAPSHOT edited after 3."""
    await publish_nodes(client)
    assert (
        await client.post("/workflowDefinition", json=two_step_workflow(workflow_id), headers=ACME)
    ).status_code == 201
    for comment in ("v1", "v2", "v3"):
        body = two_step_workflow(workflow_id, comment=comment)
        assert (await client.put("/workflowDefinition", json=body, headers=ACME)).status_code == 200
        assert (
            await client.post(f"/workflowDefinition/{workflow_id}/publishWorkflow", headers=ACME)
        ).status_code == 200


async def _weights(client: Client, workflow_id: str = "flow") -> dict[str, int]:
    response = await client.get(f"/workflowDefinition/{workflow_id}/versions", headers=ACME)
    assert response.status_code == 200
    return {item["version"]: item["weight"] for item in response.json()}


async def test_split_weights_show_in_versions_and_active_reads_the_heaviest(
    client: Client, changes: RecordingChanges
) -> None:
    """A split is stored; versions carry its weights; ?version=ACTIVE answers the heaviest version; a change event."""
    await _three_versions(client)
    split = {"split": [{"version": "2", "weight": 30}, {"version": "3", "weight": 70}]}
    response = await client.put("/workflowDefinition/flow/traffic", json=split, headers=ACME)
    assert response.status_code == 200, response.text
    assert response.json() == split
    assert await _weights(client) == {"1": 0, "2": 30, "3": 70}
    active = await client.get("/workflowDefinition/flow", params={"version": "ACTIVE"}, headers=ACME)
    assert active.json()["comment"] == "v3" and active.json()["version"] == "3"
    assert (await client.get("/workflowDefinition/flow/traffic", headers=ACME)).json() == split
    assert ("flow", "activated") in [(e.id, str(e.change)) for e, _ in changes.events]


async def test_activate_sets_the_split_to_one_version(client: Client) -> None:
    """activate?version=N after a split: N takes every ACTIVE start again (a rollback)."""
    await _three_versions(client)
    split = {"split": [{"version": "2", "weight": 50}, {"version": "3", "weight": 50}]}
    assert (await client.put("/workflowDefinition/flow/traffic", json=split, headers=ACME)).status_code == 200
    assert (
        await client.post("/workflowDefinition/flow/activate", params={"version": "1"}, headers=ACME)
    ).status_code == 200
    assert await _weights(client) == {"1": 100, "2": 0, "3": 0}
    answer = (await client.get("/workflowDefinition/flow/traffic", headers=ACME)).json()
    assert answer == {"split": [{"version": "1", "weight": 100}]}


async def test_invalid_splits_answer_422_with_pointers_and_change_nothing(client: Client) -> None:
    """Unknown versions, SNAPSHOT, repeated versions, weights not summing to 100, bad shapes: 422 with pointers."""
    await _three_versions(client)
    cases: list[tuple[Any, set[str]]] = [
        ({"split": [{"version": "3", "weight": 60}, {"version": "9", "weight": 40}]}, {"/split/1/version"}),
        ({"split": [{"version": "SNAPSHOT", "weight": 100}]}, {"/split/0/version"}),
        ({"split": [{"version": "2", "weight": 50}, {"version": "2", "weight": 50}]}, {"/split/1/version"}),
        ({"split": [{"version": "2", "weight": 50}, {"version": "3", "weight": 40}]}, {"/split"}),
        ({"split": [{"version": "2", "weight": 50.5}, {"version": "3", "weight": 49.5}]}, {"/split/0/weight"}),
        ({"split": [{"version": "2", "weight": -10}, {"version": "3", "weight": 110}]}, {"/split/0/weight"}),
        ({"split": []}, {"/split"}),
        ({"split": [{"version": "3", "weight": 100, "extra": 1}]}, {"/split/0/extra"}),
    ]
    for body, pointers in cases:
        response = await client.put("/workflowDefinition/flow/traffic", json=body, headers=ACME)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert {error["pointer"] for error in response.json()["errors"]} == pointers, body
    assert await _weights(client) == {"1": 100, "2": 0, "3": 0}


async def test_split_of_unknown_or_other_tenants_workflow_is_404(client: Client) -> None:
    """A split names one tenant's workflow: another tenant's (or none) answers 404."""
    await _three_versions(client)
    split = {"split": [{"version": "1", "weight": 100}]}
    assert (await client.put("/workflowDefinition/nope/traffic", json=split, headers=ACME)).status_code == 404
    assert (await client.put("/workflowDefinition/flow/traffic", json=split, headers=GLOBEX)).status_code == 404
    assert (await client.get("/workflowDefinition/flow/traffic", headers=GLOBEX)).status_code == 404


async def test_a_deleted_workflow_recreated_has_no_split(client: Client) -> None:
    """Deleting a workflow drops its split: the same id created and published again is ACTIVE at its one version."""
    await _three_versions(client)
    split = {"split": [{"version": "2", "weight": 40}, {"version": "3", "weight": 60}]}
    assert (await client.put("/workflowDefinition/flow/traffic", json=split, headers=ACME)).status_code == 200
    assert (await client.delete("/workflowDefinition/flow", headers=ACME)).status_code in (200, 204)
    assert (await client.post("/workflowDefinition", json=two_step_workflow("flow"), headers=ACME)).status_code == 201
    assert (await client.post("/workflowDefinition/flow/publishWorkflow", headers=ACME)).status_code == 200
    assert await _weights(client) == {"4": 100}


def test_pick_follows_the_weights_and_is_sticky() -> None:
    """The hash of workflowId picks versions in proportion to their weights, the same one every time, in any order."""
    weights = [(3, 90), (4, 10)]
    ids = [f"order-{n}" for n in range(5000)]
    counts = collections.Counter(pick(weights, workflow_id) for workflow_id in ids)
    assert set(counts) == {3, 4}
    assert 400 <= counts[4] <= 600
    assert all(pick(weights, i) == pick(list(reversed(weights)), i) for i in ids[:500])
    assert all(pick([(3, 100), (4, 0)], i) == 3 for i in ids[:500])
