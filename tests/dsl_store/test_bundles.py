"""The example bundles load and publish completely, and reloading them changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from dsl_store.helpers import ACME, EXAMPLES

Client = AsyncTestClient[Any]
BUNDLES = sorted(EXAMPLES.glob("*.json"))


async def _load(client: Client, bundle: dict[str, Any]) -> dict[str, str]:
    """Create (or replace) then publish every definition, nodes first; answers id -> published version."""
    versions: dict[str, str] = {}
    for route, publish, key in (
        ("/nodeDefinition", "publishNode", "nodeDefinitions"),
        ("/workflowDefinition", "publishWorkflow", "workflowDefinitions"),
    ):
        for definition in bundle.get(key, []):
            created = await client.post(route, json=definition, headers=ACME)
            if created.status_code == 409:
                created = await client.put(route, json=definition, headers=ACME)
            assert created.status_code in (200, 201), created.text
            published = await client.post(f"{route}/{definition['id']}/{publish}", headers=ACME)
            assert published.status_code == 200, published.text
            versions[definition["id"]] = published.json()["version"]
    return versions


@pytest.mark.parametrize("path", BUNDLES, ids=[path.stem for path in BUNDLES])
async def test_example_bundle_loads_publishes_and_reloads_idempotently(client: Client, path: Path) -> None:
    """Every node and workflow of the bundle publishes as version 1; loading it again keeps version 1."""
    bundle = json.loads(path.read_text())
    first = await _load(client, bundle)
    assert set(first.values()) == {"1"}
    for workflow in bundle["workflowDefinitions"]:
        enriched = await client.get(
            f"/workflowDefinition/{workflow['id']}",
            params={"version": "ACTIVE", "enrichNodeDefinition": "true"},
            headers=ACME,
        )
        assert enriched.status_code == 200
        assert all(state["nodeDefinition"]["version"] == "1" for state in enriched.json()["states"].values())
    assert await _load(client, bundle) == first


async def test_both_bundles_load_into_one_tenant(client: Client) -> None:
    """Both bundles together load and publish in one tenant without clashes."""
    for path in BUNDLES:
        await _load(client, json.loads(path.read_text()))
    for workflow_id in ("hello_approval", "return_request"):
        versions = (await client.get(f"/workflowDefinition/{workflow_id}/versions", headers=ACME)).json()
        assert [(v["version"], v["active"]) for v in versions] == [("1", True)]
