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
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from drift_cli.bundles import find_bundles, load_bundle_files
from drift_cli.config import DevConfig, DevSecrets
from drift_cli.platform import Platform
from drift_cli.servers import InfraStack, free_port
from hostile.support import (
    KEYS,
    ORDINARY,
    SERVICE_TOKEN,
    VICTIM_DEADLINE_S,
    WEBHOOK_SECRET,
    VictimCheck,
    bearer,
    ordinary_run,
)

EXAMPLES = Path(__file__).parents[2] / "examples"


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


def _tenant_client(service_url: Callable[[Platform], str], key: str, timeout: float, doc: str) -> Any:
    """A fixture: a client of one of the platform's HTTP services, authenticated with `key`."""

    @pytest_asyncio.fixture(loop_scope="session")
    async def client(hostile_platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(base_url=service_url(hostile_platform), headers=bearer(key), timeout=timeout) as c:
            yield c

    client.__doc__ = doc
    return client


def _gateway(platform: Platform) -> str:
    return platform.gateway_url


def _dsl_store(platform: Platform) -> str:
    return platform.dsl_store_url


attacker = _tenant_client(_gateway, "key-mallory", 120, "The gateway as the hostile tenant `mallory`.")
attacker_store = _tenant_client(_dsl_store, "key-mallory", 120, "The dsl-store as the hostile tenant `mallory`.")
victim = _tenant_client(_gateway, "key-globex", 60, "The gateway as the well-behaved tenant `globex`.")
victim_store = _tenant_client(_dsl_store, "key-globex", 60, "The dsl-store as the well-behaved tenant `globex`.")


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
