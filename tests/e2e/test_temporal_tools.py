"""Temporal's own tools on Drift runs: the metadata query, activity summaries and search-attribute filters."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from drift_cli.platform import Platform
from drift_runtime.temporal import DATA_CONVERTER, connect_temporal

pytestmark = pytest.mark.asyncio(loop_scope="session")

LISTED_WITHIN_S = 10.0


async def _waiting_run(gateway: httpx.AsyncClient) -> str:
    workflow_id = f"tools-{uuid.uuid4().hex[:12]}"
    started = await gateway.post(
        "/v3/workflow/start",
        json={"workflow": {"id": "hello_approval"}, "workflowId": workflow_id, "params": {"name": "Ada"}},
    )
    assert started.status_code == 200, started.text
    assert started.json()["workflowStatus"] == "WAITING"
    return workflow_id


async def _client(platform: Platform) -> Client:
    return await connect_temporal(platform.infra.temporal_address, "default")


async def test_metadata_query_answers_through_drifts_converter(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """`__temporal_workflow_metadata` (the UI's Queries tab, `temporal workflow metadata`) answers on a Drift run."""
    workflow_id = await _waiting_run(gateway)
    client = await _client(platform)
    handle = client.get_workflow_handle(f"acme~{workflow_id}")
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert isinstance(metadata, WorkflowMetadata)
    assert metadata.definition.type
    queries = {query.name for query in metadata.definition.query_definitions}
    assert "__temporal_workflow_metadata" in queries
    assert len(queries) > 1, queries  # Drift's own queries are listed beside Temporal's
    # Drift's own payloads are still plain JSON through msgspec.
    payload = DATA_CONVERTER.payload_converter.to_payloads([{"a": 1}])[0]
    assert payload.metadata["encoding"] == b"json/plain"
    assert payload.data == b'{"a":1}'


async def test_activities_are_summarised_by_node_instance_and_type(
    platform: Platform, gateway: httpx.AsyncClient
) -> None:
    """Each node's local activity carries a summary naming the Drift node's instance and type (the UI's timeline)."""
    workflow_id = await _waiting_run(gateway)
    client = await _client(platform)
    history = await client.get_workflow_handle(f"acme~{workflow_id}").fetch_history()
    summaries = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and event.user_metadata.HasField("summary"):
            summaries.append(DATA_CONVERTER.payload_converter.from_payloads([event.user_metadata.summary])[0])
    assert "greet (SCRIPT)" in summaries, summaries
    assert "ask_approval (INSTRUCTION)" in summaries, summaries


async def test_search_attributes_filter_drift_runs(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """A visibility query on Drift's attributes (as `temporal workflow list --query` sends it) finds the run."""
    workflow_id = await _waiting_run(gateway)
    client = await _client(platform)
    query = (
        "DriftTenant = 'acme' AND DriftDefinitionId = 'hello_approval' AND DriftStatus = 'WAITING' "
        f"AND WorkflowId = 'acme~{workflow_id}'"
    )
    deadline = time.monotonic() + LISTED_WITHIN_S
    found: list[str] = []
    while time.monotonic() < deadline:  # visibility is eventually consistent: no event to await
        found = [execution.id async for execution in client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.2)
    assert found == [f"acme~{workflow_id}"]
    other_tenant = f"DriftTenant = 'globex' AND WorkflowId = 'acme~{workflow_id}'"
    assert [execution.id async for execution in client.list_workflows(other_tenant)] == []
