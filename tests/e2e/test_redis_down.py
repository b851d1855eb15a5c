"""Redis stopped, then started again: sync calls degrade to the runs' NATS status events, never a 5xx.

These tests stop Redis, so they run on a stack of their own (servers and services), never on the
session's shared one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from support.starts import hello

from drift_cli.bundles import load_bundle_files
from drift_cli.config import DevConfig, DevSecrets, generate_webhook_secret
from drift_cli.platform import Platform, Service
from drift_cli.servers import InfraStack, free_port, http_probe

pytestmark = pytest.mark.asyncio(loop_scope="session")

HELLO = Path(__file__).parents[2] / "examples" / "hello-approval.json"
KEY = "key-acme"
REDIS_UNAVAILABLE = "gateway.redis_unavailable"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    """Temporal, NATS, Redis and every service in a home of their own, `hello_approval` loaded for `acme`."""
    home = tmp_path_factory.mktemp("redis-down-home")
    infra = InfraStack(home / "infra")
    await infra.start()
    try:
        config = DevConfig(home=home, gateway_port=free_port(), dsl_store_port=free_port(), log_format="json")
        secrets = DevSecrets(
            api_keys={KEY: "acme"},
            dev_api_key=KEY,
            service_token="service-token-for-tests",
            webhook_secret=generate_webhook_secret(),
        )
        async with Platform(config, secrets, infra=infra) as running:
            report = await load_bundle_files(running.dsl_store_url, KEY, [HELLO])
            report.raise_for_errors()
            yield running
    finally:
        infra.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def client(own_platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the own stack's gateway, as tenant `acme`."""
    async with httpx.AsyncClient(
        base_url=own_platform.gateway_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60, trust_env=False
    ) as http:
        yield http


def _service(platform: Platform, name: str) -> Service:
    return next(s for s in platform.services if s.name == name)


def _logged(platform: Platform, event: str) -> int:
    """How many lines of the gateway's JSON log carry `event`."""
    text = _service(platform, "gateway").process.log_path.read_text(errors="replace")
    return text.count(f'"event": "{event}"') + text.count(f'"event":"{event}"')


@asynccontextmanager
async def redis_stopped(platform: Platform) -> AsyncIterator[None]:
    """Redis stopped cleanly; on exit started again (empty) on the same port, and the HTTP services ready."""
    server = platform.infra.redis
    assert server is not None and server.process is not None
    server.process.stop(10)
    try:
        yield
    finally:
        server.spawn()
        await server.start(60)
        for service in platform.services:
            if service.http_api:
                await service.process.wait_ready(http_probe(service.ready_url), 60)


async def _start(client: httpx.AsyncClient, workflow_id: str, timeout_ms: int = 20_000) -> httpx.Response:
    return await client.post("/v3/workflow/start", json=hello(workflow_id, "Ada", syncTimeoutMs=timeout_ms))


async def _resume(client: httpx.AsyncClient, workflow_id: str, decision: str) -> httpx.Response:
    return await client.put(
        f"/v3/workflow/resume/{workflow_id}",
        json={"viewResponse": {"selectedOptions": {"decision": decision}}, "syncTimeoutMs": 20_000},
    )


def _run_id() -> str:
    return f"redis-down-{uuid.uuid4().hex[:12]}"


async def test_with_redis_stopped_sync_calls_are_answered_from_status_events(
    own_platform: Platform, client: httpx.AsyncClient
) -> None:
    """With Redis stopped: sync start 200 WAITING, a bad resume its own 422, a good one 200 COMPLETED, GET 200."""
    before = _logged(own_platform, REDIS_UNAVAILABLE)
    async with redis_stopped(own_platform):
        workflow_id = _run_id()
        started = await _start(client, workflow_id)
        assert started.status_code == 200, started.text
        assert started.json()["workflowStatus"] == "WAITING"
        assert started.json()["currentNode"] == "ask_approval"

        # The rejection is matched by command id on the status events: the caller's own 422, not a 5xx.
        refused = await _resume(client, workflow_id, "MAYBE")
        assert refused.status_code == 422, refused.text

        resumed = await _resume(client, workflow_id, "APPROVE")
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["workflowStatus"] == "COMPLETED"
        assert resumed.json()["disposition"] == "APPROVED: Hello, Ada!"

        fetched = await client.get(f"/v3/workflow/{workflow_id}")
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["workflowStatus"] == "COMPLETED"

        # A sync timeout shorter than the run needs: 202 with the best known state, never a 503.
        slow = await _start(client, _run_id(), timeout_ms=1)
        assert slow.status_code == 202, slow.text
    # These answers really came the degraded way: the gateway found Redis unavailable for each call.
    assert _logged(own_platform, REDIS_UNAVAILABLE) >= before + 4


async def test_after_redis_returns_sync_starts_answer_over_redis_again(
    own_platform: Platform, client: httpx.AsyncClient
) -> None:
    """Sync starts fired at once after a Redis restart answer 200 over Redis: dead pooled connections are replaced."""
    # Several calls at once that read the last-state key (their timeout is 0: they answer from it, 202 while the run
    # is on its way, or 200 if it already reached WAITING), so the gateway's pool holds several open connections
    # when Redis goes away.
    warm = await asyncio.gather(*(_start(client, _run_id(), timeout_ms=0) for _ in range(6)))
    assert all(r.status_code in (200, 202) for r in warm), [r.text for r in warm]
    assert all(r.json()["workflowStatus"] == "WAITING" for r in warm if r.status_code == 200), [r.text for r in warm]
    async with redis_stopped(own_platform):
        pass
    before = _logged(own_platform, REDIS_UNAVAILABLE)
    after = await asyncio.gather(*(_start(client, _run_id()) for _ in range(6)))
    assert [r.status_code for r in after] == [200] * 6, [r.text for r in after]
    assert {r.json()["workflowStatus"] for r in after} == {"WAITING"}
    # Not one of them fell back to NATS: each reconnected to Redis on its first failure.
    assert _logged(own_platform, REDIS_UNAVAILABLE) == before
