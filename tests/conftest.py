"""Shared fixtures: `infra`, the embedded Temporal, NATS and Redis, started once per session.

The servers always run embedded, on OS-chosen free loopback ports, in a temporary
DRIFT_HOME: DRIFT_*_URL / DRIFT_TEMPORAL_ADDRESS in the environment are ignored, and the
well-known ports (4222, 6379, 7233, 8233) of any system services are never used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from drift_cli.servers import InfraStack


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def infra(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InfraStack]:
    """A started InfraStack: `.nats_url`, `.temporal_address`, `.temporal_ui_url`, `.redis_url`.

    NATS is authenticated (contract 14): `.nats_url` carries the service user's credentials
    (`nats://drift:<password>@127.0.0.1:<port>`), so a client connecting with it has Drift's rights;
    a platform started on this stack admits its tenants (`infra.authorize_tenants`).
    """
    stack = InfraStack(tmp_path_factory.mktemp("drift-home"))
    await stack.start()
    try:
        yield stack
    finally:
        stack.stop()
