"""Names the hostile-tenant tests share: tenant keys, the victim's workflow, its deadline, one ordinary run."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from support.loopback import HttpAnswer, HttpRequest, LoopbackServer

from drift_cli.config import generate_webhook_secret

VICTIM_DEADLINE_S = 5.0
"""How long one ordinary sync start of the well-behaved tenant may take while an attack runs."""

ORDINARY = {
    "nodeDefinitions": [
        {
            "id": "ordinary_sum",
            "type": "SCRIPT",
            "output": "{% {'total': $sum($global.params.values), 'n': $count($global.params.values)} %}",
        },
        {"id": "ordinary_done", "type": "SUCCESS", "disposition": "{% 'TOTAL ' & $string($global.sum.total) %}"},
    ],
    "workflowDefinitions": [
        {
            "id": "ordinary",
            "startNode": "sum",
            "states": {
                "sum": {"resourceId": "ordinary_sum", "nextNode": "done"},
                "done": {"resourceId": "ordinary_done", "end": True},
            },
        }
    ],
}
"""The victim's workflow: one SCRIPT node and a SUCCESS, stored for every tenant."""

KEYS = {"key-acme": "acme", "key-globex": "globex", "key-mallory": "mallory"}
SERVICE_TOKEN = "service-token-for-hostile-tests"
WEBHOOK_SECRET = generate_webhook_secret()


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of an API key."""
    return {"Authorization": f"Bearer {key}"}


VictimCheck = Callable[[Awaitable[object]], Awaitable[list[float]]]
"""Runs an attack while the victim keeps starting ordinary runs; answers the victim's run times."""


async def ordinary_run(victim: httpx.AsyncClient, workflow_id: str) -> float:
    """Start `ordinary` synchronously as the victim; the seconds it took to answer COMPLETED."""
    began = time.monotonic()
    answer = await victim.post(
        "/v3/workflow/start",
        json={"workflow": {"id": "ordinary"}, "workflowId": workflow_id, "params": {"values": [1, 2, 3]}},
    )
    took = time.monotonic() - began
    assert answer.status_code == 200, answer.text
    assert answer.json()["workflowStatus"] == "COMPLETED", answer.text
    return took


def inline(node: dict[str, Any], next_node: str | None = None) -> dict[str, Any]:
    """A workflow state holding its node inline: it goes on to `next_node`, or ends the run without one."""
    state: dict[str, Any] = {"nodeDefinition": {"id": "inline", **node}}
    if next_node is None:
        state["end"] = True
    else:
        state["nextNode"] = next_node
    return state


async def define(
    store: httpx.AsyncClient, states: dict[str, Any], start: str, *, prefix: str = "runs", **extra: Any
) -> str:
    """Create and publish (so activate) a workflow with inline nodes as the store's tenant; answers its id."""
    definition_id = extra.pop("id", None) or f"{prefix}_{uuid.uuid4().hex[:10]}"
    body = {"id": definition_id, "startNode": start, "states": states, **extra}
    created = await store.post("/workflowDefinition", json=body)
    assert created.status_code == 201, created.text
    published = await store.post(f"/workflowDefinition/{definition_id}/publishWorkflow")
    assert published.status_code == 200, published.text
    return definition_id


@dataclass
class Hanging(LoopbackServer):
    """A stub endpoint that holds every request until released: keeps a call open as long as a test wants."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: int = 0
    body: bytes = b'{"ok": true}'

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        self.arrived += 1
        await self.notify()
        await self.release.wait()
        return HttpAnswer(200, self.body)
