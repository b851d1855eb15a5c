"""The hostile-tenant suite's platform: every service on servers of its own, three tenants.

`mallory` attacks; `globex` is the well-behaved tenant whose ordinary runs must keep completing
within seconds while each attack runs (`victim_keeps_completing`); `acme` is spare. Its own
Temporal, NATS and Redis, so an attack can never disturb the rest of the suite.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from drift_cli.bundles import find_bundles, load_bundle_files
from drift_cli.config import DevConfig, DevSecrets, generate_webhook_secret
from drift_cli.platform import Platform
from drift_cli.servers import InfraStack, free_port
from hostile.support import ORDINARY, VICTIM_DEADLINE_S, VictimCheck, ordinary_run

EXAMPLES = Path(__file__).parents[2] / "examples"
KEYS = {"key-acme": "acme", "key-globex": "globex", "key-mallory": "mallory"}
SERVICE_TOKEN = "service-token-for-hostile-tests"
WEBHOOK_SECRET = generate_webhook_secret()


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of an API key."""
    return {"Authorization": f"Bearer {key}"}


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def hostile_platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    """Every Drift service on servers of its own; the examples and `ordinary` loaded for every tenant."""
    home = tmp_path_factory.mktemp("hostile-platform")
    bundle = home / "ordinary.json"
    bundle.write_text(json.dumps(ORDINARY))
    config = DevConfig(home=home, gateway_port=free_port(), dsl_store_port=free_port(), log_format="json")
    secrets = DevSecrets(
        api_keys=KEYS, dev_api_key="key-acme", service_token=SERVICE_TOKEN, webhook_secret=WEBHOOK_SECRET
    )
    async with InfraStack(home / "infra") as infra, Platform(config, secrets, infra=infra) as running:
        for key in KEYS:
            report = await load_bundle_files(running.dsl_store_url, key, [*find_bundles(EXAMPLES), bundle])
            report.raise_for_errors()
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def attacker(hostile_platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway as the hostile tenant `mallory`."""
    async with httpx.AsyncClient(
        base_url=hostile_platform.gateway_url, headers=bearer("key-mallory"), timeout=120
    ) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def attacker_store(hostile_platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """The dsl-store as the hostile tenant `mallory`."""
    async with httpx.AsyncClient(
        base_url=hostile_platform.dsl_store_url, headers=bearer("key-mallory"), timeout=120
    ) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def victim(hostile_platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway as the well-behaved tenant `globex`."""
    async with httpx.AsyncClient(base_url=hostile_platform.gateway_url, headers=bearer("key-globex"), timeout=60) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def victim_store(hostile_platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """The dsl-store as the well-behaved tenant `globex`."""
    async with httpx.AsyncClient(
        base_url=hostile_platform.dsl_store_url, headers=bearer("key-globex"), timeout=60
    ) as c:
        yield c


@pytest.fixture
def victim_keeps_completing(victim: httpx.AsyncClient, request: pytest.FixtureRequest) -> VictimCheck:
    """Run `attack` while the victim starts ordinary runs one after another; each must answer within seconds.

    Returns the victim's answer times. The victim keeps going until the attack has finished and at
    least three of its runs have completed, so every run overlaps the attack or follows it at once.
    """

    async def check(attack: Awaitable[object]) -> list[float]:
        task = asyncio.ensure_future(attack)
        times: list[float] = []
        name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40]
        prefix = f"victim-{name}-{time.time_ns()}"
        try:
            while not task.done() or len(times) < 3:
                took = await ordinary_run(victim, f"{prefix}-{len(times)}")
                assert took < VICTIM_DEADLINE_S, f"the victim's run took {took:.1f} s during the attack"
                times.append(took)
        finally:
            if not task.done():
                task.cancel()
        await task
        return times

    return check
