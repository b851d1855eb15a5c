"""Definitions built from inline nodes, published for acme; sync starts of them; a run's last stored event.

Shared by the end-to-end tests that write their own flows (retry, repair, test runs, node types, runs list).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import nats
from nats.js.errors import NotFoundError

from drift_cli.bundles import dsl_store_client
from drift_cli.platform import Platform
from drift_schema import subjects


def state(node: dict[str, Any], next_node: str | None = None, *, end: bool = False, **extra: Any) -> dict[str, Any]:
    """A state inlining `node` (`extra`: more fields of the state); the node's id defaults to a placeholder."""
    body: dict[str, Any] = {"nodeDefinition": {"id": "inline", **node}, **extra}
    if next_node is not None:
        body["nextNode"] = next_node
    if end:
        body["end"] = True
    return body


def http(url: str, next_node: str | None = None, method: str = "POST", output: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "HTTP", "request": {"method": method, "url": url, "body": {"ping": 1}}}
    if output is not None:
        node["output"] = output
    return state(node, next_node)


def script(output: Any, next_node: str | None = None, **extra: Any) -> dict[str, Any]:
    return state({"type": "SCRIPT", "output": output}, next_node, **extra)


def success(disposition: Any) -> dict[str, Any]:
    return state({"type": "SUCCESS", "disposition": disposition}, end=True)


def failure(error: Any) -> dict[str, Any]:
    return state({"type": "FAILURE", "error": error}, end=True)


def on_event(event: str, next_node: str) -> dict[str, Any]:
    return state({"type": "WAIT", "config": {"waitType": "ON_EVENT", "event": event}}, next_node)


def ok(response: httpx.Response) -> Any:
    assert response.is_success, (response.request.method, response.request.url.path, response.text)
    return response.json()


def run_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def definition(states: dict[str, Any], start: str, **extra: Any) -> dict[str, Any]:
    """A definition under a fresh id (`extra`: more top-level fields)."""
    return {"id": f"flow_{uuid.uuid4().hex[:10]}", "startNode": start, "states": states, **extra}


async def define(platform: Platform, states: dict[str, Any], start: str, **extra: Any) -> str:
    """Create, publish (version 1) and activate a workflow definition for acme; answers its id."""
    body = definition(states, start, **extra)
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        ok(await dsl.post("/workflowDefinition", json=body))
        published = ok(await dsl.post(f"/workflowDefinition/{body['id']}/publishWorkflow"))
        assert published["version"] == "1", published
        ok(await dsl.post(f"/workflowDefinition/{body['id']}/activate", params={"version": "1"}))
    return str(body["id"])


async def start(gateway: httpx.AsyncClient, definition_id: str, workflow_id: str, **extra: Any) -> dict[str, Any]:
    """A sync start of version 1: the run's first stable state."""
    body = {"workflow": {"id": definition_id, "version": "1"}, "workflowId": workflow_id, **extra}
    answer: dict[str, Any] = ok(await gateway.post("/v3/workflow/start", json=body))
    return answer


async def last_event(platform: Platform, kind: str, workflow_id: str, tenant: str = "acme") -> dict[str, Any] | None:
    """The last `drift.<tenant>.evt.<kind>.<workflowId>` event JetStream holds; None when there is none."""
    connection = await nats.connect(platform.infra.nats_url)
    try:
        subject = f"drift.{tenant}.evt.{kind}.{workflow_id}"
        try:
            message = await connection.jetstream().get_last_msg(subjects.EVENT_STREAM, subject)
        except NotFoundError:
            return None
        assert message.data is not None, subject
        found: dict[str, Any] = json.loads(message.data)
        return found
    finally:
        await connection.close()
