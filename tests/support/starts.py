"""Starting runs through the gateway as the tests do: the body of `POST /v3/workflow/start`, and a waiting run."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def start_body(definition_id: str, workflow_id: str, params: Any = None, **fields: Any) -> dict[str, Any]:
    """The JSON of a start of `definition_id` (its ACTIVE version); `fields` adds callbackUrl, syncTimeoutMs..."""
    body: dict[str, Any] = {"workflow": {"id": definition_id}, "workflowId": workflow_id}
    if params is not None:
        body["params"] = params
    return {**body, **fields}


def hello(workflow_id: str, name: str, **fields: Any) -> dict[str, Any]:
    """The JSON of a start of the example `hello_approval` greeting `name` (it then waits for an approval)."""
    return start_body("hello_approval", workflow_id, {"name": name}, **fields)


async def waiting_hello(gateway: httpx.AsyncClient, prefix: str, name: str) -> str:
    """Start `hello_approval` under a fresh id beginning with `prefix`; it must answer 200 WAITING. Answers the id."""
    workflow_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
    started = await gateway.post("/v3/workflow/start", json=hello(workflow_id, name))
    assert started.status_code == 200, started.text
    assert started.json()["workflowStatus"] == "WAITING", started.text
    return workflow_id
