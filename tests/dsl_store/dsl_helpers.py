"""Helpers shared by the dsl-store tests: tokens, small definitions, a recording change publisher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from drift_dsl_store.events import DefinitionChanged

ACME = {"Authorization": "Bearer k-acme"}
GLOBEX = {"Authorization": "Bearer k-globex"}
SERVICE_TOKEN = "svc-token-for-tests"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class RecordingChanges:
    """A ChangePublisher that keeps what it was asked to announce."""

    ready = True

    def __init__(self) -> None:
        self.events: list[tuple[DefinitionChanged, str]] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def changed(self, event: DefinitionChanged, revision: str) -> None:
        self.events.append((event, revision))


def script_node(node_id: str, output: Any = "{% $params.x %}", **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "SCRIPT", "output": output, **extra}


def success_node(node_id: str = "done") -> dict[str, Any]:
    return {"id": node_id, "type": "SUCCESS", "disposition": "OK"}


def two_step_workflow(workflow_id: str = "flow", **extra: Any) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "startNode": "first",
        "states": {
            "first": {"resourceId": "calc", "nextNode": "last"},
            "last": {"resourceId": "done", "end": True},
        },
        **extra,
    }


async def publish_nodes(client: AsyncTestClient[Any], *nodes: dict[str, Any], headers: dict[str, str] = ACME) -> None:
    for node in nodes:
        assert (await client.post("/nodeDefinition", json=node, headers=headers)).status_code == 201
        assert (await client.post(f"/nodeDefinition/{node['id']}/publishNode", headers=headers)).status_code == 200
