"""Helpers shared by the dsl-store tests: tokens, small definitions, a recording change publisher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from drift_cli.servers import InfraStack
from drift_dsl_store.app import create_app
from drift_dsl_store.cache import CachingStore
from drift_dsl_store.config import Settings
from drift_dsl_store.events import DefinitionChanged, NatsChangePublisher
from drift_runtime.auth import ApiKeys

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


def two_step_nodes() -> list[dict[str, Any]]:
    """The nodes `two_step_workflow` refers to: `calc` (SCRIPT) and `done` (SUCCESS)."""
    return [script_node("calc"), success_node()]


async def publish_nodes(client: AsyncTestClient[Any], *nodes: dict[str, Any], headers: dict[str, str] = ACME) -> None:
    """Create and publish `nodes`; none given: `two_step_nodes()`."""
    for node in nodes or two_step_nodes():
        assert (await client.post("/nodeDefinition", json=node, headers=headers)).status_code == 201
        assert (await client.post(f"/nodeDefinition/{node['id']}/publishNode", headers=headers)).status_code == 200


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan and requests on this test's event loop, so its events can be awaited here."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://dsl-store") as client:
        yield client


class TwoInstances(NamedTuple):
    """Two dsl-store instances on one database, NATS and Redis: A announces its changes, B listens."""

    settings: Settings
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    cache_b: CachingStore


@asynccontextmanager
async def two_instances(tmp_path: Path, infra: InfraStack) -> AsyncIterator[TwoInstances]:
    """Serve A and B sharing a SQLite file, NATS and Redis; yields once A's publisher and B's listener are up."""
    settings = Settings(
        store_url=f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        api_keys=ApiKeys({"k-acme": "acme"}),
        nats_url=infra.nats_url,
        redis_url=infra.redis_url,
    )
    publisher_a = NatsChangePublisher(infra.nats_url)
    app_a, app_b = create_app(settings, changes=publisher_a), create_app(settings)
    async with serving(app_a) as a, serving(app_b) as b:
        async with asyncio.timeout(10):
            await publisher_a.connected.wait()
            await app_b.state.listener.subscribed.wait()
        yield TwoInstances(settings, a, b, app_b.state.cache)
