"""Temporal's own tools on Drift runs: the metadata query, activity summaries and search-attribute filters."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import pytest
from support.starts import waiting_hello
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from drift_cli.platform import Platform
from drift_runtime.temporal import DATA_CONVERTER, connect_temporal, run_result

pytestmark = pytest.mark.asyncio(loop_scope="session")

LISTED_WITHIN_S = 10.0
SUMMARISED_WITHIN_S = 30.0
"""How long the history may take to record the activities that ran before the run waited."""


async def _client(platform: Platform) -> Client:
    return await connect_temporal(platform.infra.temporal_address, "default")


async def test_metadata_query_answers_through_drifts_converter(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """`__temporal_workflow_metadata` (the UI's Queries tab, `temporal workflow metadata`) answers on a Drift run."""
    workflow_id = await waiting_hello(gateway, "tools", "Ada")
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


async def _summaries_until(handle: WorkflowHandle[Any, Any], last: str, timeout: float) -> list[str]:
    """The summaries of the run's local activities in history order, read as the history grows until one is `last`.

    The run's WAITING event leaves from inside its activity, before the workflow task recording that activity
    completes: the history may not hold it yet when the start answers, so it is long-polled (no fixed wait).
    """
    summaries: list[str] = []

    async def read() -> None:
        async for event in handle.fetch_history_events(wait_new_event=True):
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and event.user_metadata.HasField("summary"):
                summaries.append(DATA_CONVERTER.payload_converter.from_payloads([event.user_metadata.summary])[0])
                if summaries[-1] == last:
                    return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), timeout)
    return summaries


async def test_activities_are_summarised_by_node_instance_and_type(
    platform: Platform, gateway: httpx.AsyncClient
) -> None:
    """Each node's local activity carries a summary naming the Drift node's instance and type (the UI's timeline)."""
    workflow_id = await waiting_hello(gateway, "tools", "Ada")
    client = await _client(platform)
    handle = client.get_workflow_handle(f"acme~{workflow_id}")
    summaries = await _summaries_until(handle, "ask_approval (INSTRUCTION)", SUMMARISED_WITHIN_S)
    # `greet` (a pure SCRIPT) runs in a segment's local activity, named as the node the segment starts at; the
    # INSTRUCTION that then waits has one of its own. Nothing else ran before the run waited.
    assert summaries == ["greet (SCRIPT)", "ask_approval (INSTRUCTION)"], summaries


async def test_search_attributes_filter_drift_runs(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """A visibility query on Drift's attributes (as `temporal workflow list --query` sends it) finds the run."""
    workflow_id = await waiting_hello(gateway, "tools", "Ada")
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


async def test_a_failed_run_is_failed_in_temporal_too(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """A rejected run (FAILED in Drift) shows FAILED in Temporal's own status (its UI, `temporal workflow list`),
    and the workflow's failure still carries the run's state, so a caller of Temporal's API gets it back."""
    workflow_id = await waiting_hello(gateway, "tools-failed", "Ada")
    resumed = await gateway.put(
        f"/v3/workflow/resume/{workflow_id}", json={"viewResponse": {"selectedOptions": {"decision": "REJECT"}}}
    )
    assert resumed.json()["workflowStatus"] == "FAILED", resumed.text
    handle = (await _client(platform)).get_workflow_handle(f"acme~{workflow_id}")
    snapshot = await run_result(handle)
    assert (snapshot.workflow_status, snapshot.disposition) == ("FAILED", None)
    assert snapshot.error_message == resumed.json()["errorMessage"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
