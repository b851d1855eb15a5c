"""The whole platform for the fuzzers: every service on free loopback ports, on servers of its own.

Its own Temporal, NATS and Redis: two platforms on one NATS would share the durable consumers
(`dispatcher`, `notifier-*`), each taking the other's commands and webhooks.

Each fuzzer works as its own tenant, so what one creates (a definition the
dsl-store fuzzer made valid by chance) can never be started by another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from drift_cli.bundles import find_bundles, load_bundle_files
from drift_cli.config import DevConfig, DevSecrets, generate_webhook_secret
from drift_cli.platform import Platform
from drift_cli.servers import InfraStack, free_port
from fuzz.fuzz_support import KEYS, SERVICE_TOKEN

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def fuzz_platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    """Every Drift service on servers of its own; the example bundles loaded for every tenant."""
    home = tmp_path_factory.mktemp("fuzz-platform")
    config = DevConfig(home=home, gateway_port=free_port(), dsl_store_port=free_port(), log_format="json")
    secrets = DevSecrets(
        api_keys=KEYS, dev_api_key="key-acme", service_token=SERVICE_TOKEN, webhook_secret=generate_webhook_secret()
    )
    async with InfraStack(home / "infra") as infra, Platform(config, secrets, infra=infra) as running:
        for key in KEYS:
            report = await load_bundle_files(running.dsl_store_url, key, find_bundles(EXAMPLES))
            report.raise_for_errors()
        yield running
