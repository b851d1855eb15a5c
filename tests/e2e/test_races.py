"""Races a user can cause: they must end in one consistent outcome, answered, never a 5xx."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from support.starts import hello

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_resume_racing_terminate_ends_consistently(gateway: httpx.AsyncClient) -> None:
    """A resume and a terminate sent together: exactly one wins (200), the other conflicts (409), and GET agrees."""
    for _ in range(3):
        workflow_id = f"race-{uuid.uuid4().hex[:10]}"
        started = await gateway.post(
            "/v3/workflow/start",
            json=hello(workflow_id, "R"),
        )
        assert started.json()["workflowStatus"] == "WAITING"
        resumed, terminated = await asyncio.gather(
            gateway.put(
                f"/v3/workflow/resume/{workflow_id}",
                json={"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}},
            ),
            gateway.delete(f"/v3/workflow/terminate/{workflow_id}"),
        )
        final = (await gateway.get(f"/v3/workflow/{workflow_id}")).json()["workflowStatus"]
        codes = (resumed.status_code, terminated.status_code)
        # Both winning would mean a run that completed and was terminated: one of them must be refused.
        assert sorted(codes) == [200, 409], (codes, resumed.text, terminated.text)
        if terminated.status_code == 200:
            assert terminated.json()["workflowStatus"] == "TERMINATED"
            assert final == "TERMINATED"
        else:
            assert resumed.json()["workflowStatus"] == "COMPLETED"
            assert final == "COMPLETED"


async def test_concurrent_starts_of_one_id_run_once(gateway: httpx.AsyncClient) -> None:
    """Five starts of the same workflowId at once: one run answers WAITING, the others conflict."""
    workflow_id = f"dup-{uuid.uuid4().hex[:10]}"
    body = {"workflow": {"id": "hello_approval"}, "workflowId": workflow_id, "params": {"name": "D"}}
    answers = await asyncio.gather(*(gateway.post("/v3/workflow/start", json=body) for _ in range(5)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200, 409, 409, 409, 409], [a.text for a in answers]
