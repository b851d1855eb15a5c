"""The whole platform, real services on real servers, started once for the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from drift_cli.bundles import find_bundles, load_bundle_files
from drift_cli.config import DevConfig, DevSecrets
from drift_cli.platform import Platform
from drift_cli.servers import InfraStack, free_port
from e2e.keys import KEYS, WEBHOOK_SECRET

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def platform(infra: InfraStack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    """Every Drift service running against the session's servers, example bundles loaded for `acme`.

    Stopped once the end-to-end tests are done: its dispatcher and notifier would otherwise go on serving the
    session's NATS, and answer commands that later packages' tests publish to a gateway with no dispatcher.
    """
    home = tmp_path_factory.mktemp("platform-home")
    config = DevConfig(home=home, gateway_port=free_port(), dsl_store_port=free_port(), log_format="json")
    secrets = DevSecrets(
        api_keys=KEYS,
        dev_api_key="key-acme",
        service_token="service-token-for-tests",
        webhook_secret=WEBHOOK_SECRET,
    )
    async with Platform(config, secrets, infra=infra) as running:
        report = await load_bundle_files(running.dsl_store_url, "key-acme", find_bundles(EXAMPLES))
        report.raise_for_errors()
        yield running


def _gateway_as(platform: Platform, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=platform.gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway, authenticated as tenant `acme`."""
    async with _gateway_as(platform, "key-acme") as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def globex(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway, authenticated as another tenant, `globex`."""
    async with _gateway_as(platform, "key-globex") as client:
        yield client
