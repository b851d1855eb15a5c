"""The run-context store: every stable state reaches the dsl-store, and GET answers from it after retention."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from nats.aio.msg import Msg
from redis.asyncio import Redis
from support.starts import waiting_hello
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from drift_cli.platform import Platform
from drift_cli.servers import free_port
from drift_notifier.contexts import RunContextWriter, store_client
from drift_runtime.messaging import TransientFault
from drift_runtime.temporal import connect_temporal
from drift_schema import codec, redis_keys
from drift_schema.events import WorkflowEvent
from drift_schema.run import temporal_id
from drift_schema.statuses import WorkflowStatus

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVICE_TOKEN = "service-token-for-tests"


async def _stored(platform: Platform, tenant: str, workflow_id: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=platform.dsl_store_url, timeout=10) as store:
        return await store.get(
            f"/runs/{workflow_id}",
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}", "X-Drift-Tenant": tenant},
        )


async def _until_stored(platform: Platform, workflow_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    """Poll the store until the run's record has `status` (the write is asynchronous; no event announces it)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await _stored(platform, "acme", workflow_id)
        if response.status_code == 200 and response.json()["workflowStatus"] == status:
            record: dict[str, Any] = response.json()
            return record
        assert time.monotonic() < deadline, f"no {status} record within {timeout} s: {response.text}"
        await asyncio.sleep(0.2)


async def _forget(platform: Platform, workflow_id: str) -> None:
    """Do what Redis's TTL and Temporal's retention do: remove the run from both."""
    redis = Redis.from_url(platform.infra.redis_url)
    try:
        assert await redis.delete(redis_keys.last_state("acme", workflow_id)) == 1
    finally:
        await redis.aclose()
    client = await Client.connect(platform.infra.temporal_address)
    handle = client.get_workflow_handle(temporal_id("acme", workflow_id))
    request = DeleteWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=handle.id)
    )
    # Deletion is asynchronous in Temporal (and a just-closed run may not take it yet): ask again
    # until describe says the run is gone.
    # The dev server's deletion of a just-terminated run was seen taking over 30 s.
    deadline = time.monotonic() + 90
    while True:
        try:
            await client.workflow_service.delete_workflow_execution(request)
            description = await handle.describe()
        except RPCError as error:
            assert error.status == RPCStatusCode.NOT_FOUND, error
            return
        assert time.monotonic() < deadline, f"Temporal did not delete the run within 90 s: {description.status}"
        await asyncio.sleep(0.5)


async def test_completed_run_is_still_readable_after_redis_and_temporal_forget_it(
    gateway: httpx.AsyncClient, globex: httpx.AsyncClient, platform: Platform
) -> None:
    """WAITING and COMPLETED reach the store with their context; GET answers from it once Redis and Temporal forgot."""
    workflow_id = await waiting_hello(gateway, "ctx", "Ada")
    waiting = await _until_stored(platform, workflow_id, "WAITING")
    assert waiting["currentNode"] == "ask_approval"
    assert waiting["view"]["layoutId"] == "approval_screen"
    assert waiting["context"]["greet"] == {"message": "Hello, Ada!", "length": 3}

    resumed = await gateway.put(
        f"/v3/workflow/resume/{workflow_id}", json={"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}}
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["workflowStatus"] == "COMPLETED"
    final = await _until_stored(platform, workflow_id, "COMPLETED")
    assert final["seq"] > waiting["seq"]
    assert final["disposition"] == "APPROVED: Hello, Ada!"
    assert final["context"]["ask_approval"] == {"selectedOptions": {"decision": "APPROVE"}}
    live = (await gateway.get(f"/v3/workflow/{workflow_id}")).json()

    await _forget(platform, workflow_id)

    fetched = await gateway.get(f"/v3/workflow/{workflow_id}")
    assert fetched.status_code == 200, fetched.text
    detail = fetched.json()
    # The definition is named from Temporal's search attributes while Temporal holds the run; the
    # stored context does not keep it, so afterwards those two fields read null and all else is equal.
    assert (live["definitionId"], live["definitionVersion"]) == ("hello_approval", "1")
    assert (detail["definitionId"], detail["definitionVersion"]) == (None, None)
    unnamed = {"definitionId", "definitionVersion"}
    assert {k: v for k, v in detail.items() if k not in unnamed} == {k: v for k, v in live.items() if k not in unnamed}
    assert detail["workflowStatus"] == "COMPLETED"
    assert detail["disposition"] == "APPROVED: Hello, Ada!"
    assert detail["context"]["params"] == {"name": "Ada"}
    assert detail["context"]["ask_approval"] == {"selectedOptions": {"decision": "APPROVE"}}
    assert "seq" not in detail and "runId" not in detail

    other_tenant = await globex.get(f"/v3/workflow/{workflow_id}")
    assert other_tenant.status_code == 404, other_tenant.text
    assert (await _stored(platform, "globex", workflow_id)).status_code == 404


async def test_unknown_run_is_still_404(gateway: httpx.AsyncClient) -> None:
    """A run neither Temporal, Redis nor the run-context store knows answers 404."""
    response = await gateway.get(f"/v3/workflow/never-{uuid.uuid4().hex[:12]}")
    assert response.status_code == 404, response.text


async def test_terminated_run_keeps_its_last_context(gateway: httpx.AsyncClient, platform: Platform) -> None:
    """TERMINATED (announced by the dispatcher, without a context) keeps the context of the run's last state."""
    workflow_id = await waiting_hello(gateway, "ctx", "Tess")
    await _until_stored(platform, workflow_id, "WAITING")
    terminated = await gateway.delete(f"/v3/workflow/terminate/{workflow_id}")
    assert terminated.status_code == 200, terminated.text
    # Lands within tens of milliseconds of the TERMINATED event (one run's writes are serialised, so the
    # copy of the WAITING state never waits on a retry): a short wait.
    record = await _until_stored(platform, workflow_id, "TERMINATED", timeout=5)
    assert record["context"]["greet"] == {"message": "Hello, Tess!", "length": 4}
    assert record["currentNode"] == "ask_approval"

    await _forget(platform, workflow_id)
    detail = (await gateway.get(f"/v3/workflow/{workflow_id}")).json()
    assert detail["workflowStatus"] == "TERMINATED"
    assert detail["context"]["params"] == {"name": "Tess"}


def _status_event(workflow_id: str, run: str, **fields: Any) -> Msg:
    event = WorkflowEvent(
        workflow_id=workflow_id,
        workflow_status=WorkflowStatus.WAITING,
        current_node="ask_approval",
        event_id=f"{run}:s99",
        tenant="acme",
        seq=99,
        **fields,
    )
    return Msg(_client=None, subject=f"drift.acme.evt.workflow.{workflow_id}", data=codec.encode(event))  # type: ignore[arg-type]


async def test_a_context_left_out_of_its_event_is_read_from_the_run(
    gateway: httpx.AsyncClient, platform: Platform
) -> None:
    """An event whose context was too large to carry (`contextOmitted`) is stored with the queried context."""
    workflow_id = await waiting_hello(gateway, "ctx", "Big")
    await _until_stored(platform, workflow_id, "WAITING")
    temporal = await connect_temporal(platform.infra.temporal_address, "default")
    run = (await temporal.get_workflow_handle(temporal_id("acme", workflow_id)).describe()).run_id
    async with store_client(platform.dsl_store_url, SERVICE_TOKEN) as store:
        await RunContextWriter(store, temporal).handle(_status_event(workflow_id, run, context_omitted=True))
    record = (await _stored(platform, "acme", workflow_id)).json()
    assert record["seq"] == 99
    assert record["context"]["greet"] == {"message": "Hello, Big!", "length": 3}


async def test_an_unreachable_store_naks_with_a_delay(platform: Platform) -> None:
    """A write the dsl-store cannot take raises TransientFault (nak with delay), so JetStream redelivers it."""
    async with store_client(f"http://127.0.0.1:{free_port()}", SERVICE_TOKEN) as store:
        with pytest.raises(TransientFault) as fault:
            await RunContextWriter(store, None).handle(
                _status_event("ctx-nowhere", "run-1", context={"params": {"name": "x"}})
            )
    assert fault.value.delay_s > 0
