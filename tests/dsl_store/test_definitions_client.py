"""`drift_client.DefinitionsClient` against the dsl-store: typed answers, problems as DriftError."""

from __future__ import annotations

import httpx
import pytest
from litestar.testing import AsyncTestClient

from drift_client import DefinitionsClient, DriftError
from drift_dsl_store.app import create_app
from drift_dsl_store.config import Settings
from dsl_store.helpers import RecordingChanges, two_step_nodes, two_step_workflow


async def test_the_client_covers_listing_validation_bundles_and_deletes(settings: Settings) -> None:
    """Import, list (every page), validate, export and delete through the client; a 409 and a 422 raise DriftError."""
    app = create_app(settings, changes=RecordingChanges())
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with AsyncTestClient(app=app), DefinitionsClient("http://dsl-store", "k-acme", transport=transport) as client:
        bundle = {
            "nodeDefinitions": two_step_nodes(),
            "workflowDefinitions": [two_step_workflow()],
        }
        imported = await client.import_bundle(bundle, publish=True, activate=True)
        assert imported.created == ["calc", "done", "flow"]
        assert [n.id async for n in client.all_nodes()] == ["calc", "done"]
        assert [n.id async for n in client.all_nodes(node_type="SUCCESS")] == ["done"]
        page = await client.list_workflows(page_size=1)
        assert [w.id for w in page.items] == ["flow"] and page.items[0].active_version == "1"
        assert (await client.validate(two_step_workflow("other"))).valid
        exported = await client.export(["flow"])
        assert [n.id for n in exported.node_definitions] == ["calc", "done"]

        with pytest.raises(DriftError) as referenced:
            await client.delete_node("calc")
        assert referenced.value.status == 409 and "flow" in (referenced.value.problem.detail or "")
        with pytest.raises(DriftError) as invalid:
            await client.import_bundle({"workflowDefinitions": [{"id": "x", "states": {}}]})
        assert invalid.value.status == 422 and invalid.value.problem.errors

        await client.delete_workflow("flow")
        await client.delete_node("calc")
        assert [w.id async for w in client.all_workflows()] == []
