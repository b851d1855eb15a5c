"""The greeting-approval flow over HTTP, through every service, on real Temporal, NATS and Redis."""

from __future__ import annotations

import uuid

import httpx
import pytest
from support.starts import hello

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _run_id() -> str:
    return f"hello-{uuid.uuid4().hex[:12]}"


async def _start(client: httpx.AsyncClient, workflow_id: str, name: str = "Ada", **headers: str) -> httpx.Response:
    return await client.post(
        "/v3/workflow/start",
        json=hello(workflow_id, name),
        headers=headers,
    )


async def _resume(client: httpx.AsyncClient, workflow_id: str, decision: str) -> httpx.Response:
    return await client.put(
        f"/v3/workflow/resume/{workflow_id}", json={"viewResponse": {"selectedOptions": {"decision": decision}}}
    )


async def test_start_waits_resume_completes_and_get_shows_context(gateway: httpx.AsyncClient) -> None:
    """Start answers WAITING with the rendered view; resume answers COMPLETED; GET shows the context."""
    workflow_id = _run_id()
    started = await _start(gateway, workflow_id)
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["workflowId"] == workflow_id
    assert body["workflowStatus"] == "WAITING"
    assert body["currentNode"] == "ask_approval"
    assert body["disposition"] == "AWAITING_APPROVAL"
    [option] = body["view"]["inputOptions"]
    assert option["instructions"][0]["templateVariables"]["message"] == "Hello, Ada!"
    assert body["view"]["layoutId"] == "approval_screen"

    resumed = await _resume(gateway, workflow_id, "APPROVE")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["workflowStatus"] == "COMPLETED"
    assert resumed.json()["disposition"] == "APPROVED: Hello, Ada!"

    fetched = await gateway.get(f"/v3/workflow/{workflow_id}")
    assert fetched.status_code == 200
    detail = fetched.json()
    assert detail["workflowStatus"] == "COMPLETED"
    assert detail["context"]["params"] == {"name": "Ada"}
    assert detail["context"]["greet"] == {"message": "Hello, Ada!", "length": 3}
    assert detail["context"]["ask_approval"] == {"selectedOptions": {"decision": "APPROVE"}}


async def test_reject_path_fails_with_the_user_from_thread_context(gateway: httpx.AsyncClient) -> None:
    """Rejecting routes to the FAILURE node, whose message reads X-User-Id from threadContext; the failed run no
    longer carries the approval step's AWAITING_APPROVAL disposition, in the answer or in GET."""
    workflow_id = _run_id()
    started = await _start(gateway, workflow_id, "Bob", **{"X-User-Id": "u-7", "X-Client-Id": "crm"})
    assert started.json()["workflowStatus"] == "WAITING"
    assert started.json()["disposition"] == "AWAITING_APPROVAL"
    resumed = await _resume(gateway, workflow_id, "REJECT")
    assert resumed.status_code == 200
    assert resumed.json()["workflowStatus"] == "FAILED"
    assert resumed.json()["errorMessage"] == "rejected by u-7"
    assert resumed.json()["disposition"] is None
    fetched = (await gateway.get(f"/v3/workflow/{workflow_id}")).json()
    assert (fetched["workflowStatus"], fetched["disposition"]) == ("FAILED", None)
    assert fetched["context"]["threadContext"] == {"clientId": "crm", "userId": "u-7"}


async def test_bad_selection_is_refused_and_the_run_keeps_waiting(gateway: httpx.AsyncClient) -> None:
    """A value outside possibleValues answers 422 and leaves the run WAITING for a valid resume."""
    workflow_id = _run_id()
    await _start(gateway, workflow_id)
    refused = await _resume(gateway, workflow_id, "MAYBE")
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "MAYBE" in refused.json()["detail"]
    assert (await gateway.get(f"/v3/workflow/{workflow_id}")).json()["workflowStatus"] == "WAITING"
    assert (await _resume(gateway, workflow_id, "APPROVE")).json()["workflowStatus"] == "COMPLETED"


async def test_resuming_a_finished_run_conflicts(gateway: httpx.AsyncClient) -> None:
    """A run that is not WAITING answers 409 to a resume."""
    workflow_id = _run_id()
    await _start(gateway, workflow_id)
    assert (await _resume(gateway, workflow_id, "APPROVE")).status_code == 200
    again = await _resume(gateway, workflow_id, "APPROVE")
    assert again.status_code == 409, again.text


async def test_starting_a_running_workflow_id_conflicts(gateway: httpx.AsyncClient) -> None:
    """A workflowId that is already running answers 409; the running run is untouched."""
    workflow_id = _run_id()
    assert (await _start(gateway, workflow_id)).status_code == 200
    duplicate = await _start(gateway, workflow_id, "Eve")
    assert duplicate.status_code == 409, duplicate.text
    detail = (await gateway.get(f"/v3/workflow/{workflow_id}")).json()
    assert detail["workflowStatus"] == "WAITING"
    assert detail["context"]["params"] == {"name": "Ada"}


async def test_unknown_definition_and_run_answer_404(gateway: httpx.AsyncClient) -> None:
    """Starting an unknown definition, or reading or resuming an unknown run, answers 404."""
    missing = await gateway.post("/v3/workflow/start", json={"workflow": {"id": "no_such_flow"}})
    assert missing.status_code == 404, missing.text
    assert (await gateway.get("/v3/workflow/never-started")).status_code == 404
    assert (await _resume(gateway, "never-started", "APPROVE")).status_code == 404


async def test_invalid_bodies_answer_422_with_a_pointer(gateway: httpx.AsyncClient) -> None:
    """A malformed start body answers problem+json 422 naming the field."""
    response = await gateway.post(
        "/v3/workflow/start", json={"workflow": {"id": "hello_approval"}, "params": 1, "workflowId": "has spaces"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/workflowId"


async def test_runs_are_invisible_to_other_tenants(gateway: httpx.AsyncClient, globex: httpx.AsyncClient) -> None:
    """Another tenant's run answers 404 exactly like a missing one, and cannot be resumed."""
    workflow_id = _run_id()
    await _start(gateway, workflow_id)
    assert (await globex.get(f"/v3/workflow/{workflow_id}")).status_code == 404
    assert (await _resume(globex, workflow_id, "APPROVE")).status_code == 404
    assert (await gateway.get(f"/v3/workflow/{workflow_id}")).json()["workflowStatus"] == "WAITING"


async def test_every_route_needs_a_known_bearer_key(platform: object, gateway: httpx.AsyncClient) -> None:
    """Missing or unknown tokens answer 401; health stays open."""
    base = str(gateway.base_url)
    async with httpx.AsyncClient(base_url=base) as anonymous:
        assert (await anonymous.get("/v3/workflow/x")).status_code == 401
        wrong = await anonymous.get("/v3/workflow/x", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["content-type"].startswith("application/problem+json")
        assert (await anonymous.get("/health/ready")).status_code == 200


async def test_sync_timeout_answers_202_with_the_current_state(gateway: httpx.AsyncClient) -> None:
    """With syncTimeoutMs 0 the start answers 202 with the state it has so far, not an error."""
    workflow_id = _run_id()
    response = await gateway.post("/v3/workflow/start", json=hello(workflow_id, "Z", syncTimeoutMs=0))
    assert response.status_code == 202
    assert response.json()["workflowId"] == workflow_id
    assert response.json()["workflowStatus"] in {"CREATED", "RUNNING", "WAITING"}
