"""The shipped NATS authorization confines an upstream user to its tenant's subjects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest_asyncio

from drift_cli.servers import ManagedProcess, find_executable, free_port, tcp_probe

CONFIG = Path(__file__).parents[2] / "config" / "nats" / "tenants.conf"


@pytest_asyncio.fixture(loop_scope="session")
async def secured_nats(tmp_path: Path) -> AsyncIterator[str]:
    """A nats-server started with config/nats/tenants.conf on a free loopback port."""
    port = free_port()
    config = (
        CONFIG.read_text()
        .replace("port: 4222", f'listen: "127.0.0.1:{port}"')
        .replace('"/data/nats"', f'"{tmp_path / "js"}"')
    )
    path = tmp_path / "tenants.conf"
    path.write_text(config)
    env = {"DRIFT_NATS_PASSWORD": "service-pw", "ACME_NATS_PASSWORD": "acme-pw"}
    server = ManagedProcess(
        "nats-auth", [str(find_executable("nats-server")), "-c", str(path)], log_path=tmp_path / "nats.log", env=env
    )
    server.start()
    try:
        await server.wait_ready(tcp_probe("127.0.0.1", port), timeout=30)
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.stop()


async def test_upstream_user_reaches_only_its_tenant(secured_nats: str) -> None:
    """acme's upstream user may send acme commands and read acme events, and is refused globex's subjects."""
    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def on_error(error: Exception) -> None:
        await errors.put(error)

    service = await nats.connect(secured_nats, user="drift", password="service-pw")
    upstream = await nats.connect(secured_nats, user="acme-upstream", password="acme-pw", error_cb=on_error)
    try:
        received: asyncio.Queue[str] = asyncio.Queue()

        async def record(msg: nats.aio.msg.Msg) -> None:
            await received.put(msg.subject)

        await service.subscribe("drift.*.cmd.*", cb=record)
        await service.flush()
        await upstream.publish("drift.acme.cmd.start", b"{}")
        await upstream.publish("drift.globex.cmd.start", b"{}")
        await upstream.flush()
        assert await asyncio.wait_for(received.get(), 10) == "drift.acme.cmd.start"
        violation = await asyncio.wait_for(errors.get(), 10)
        assert "permissions violation" in str(violation).lower()
        assert received.empty()

        await upstream.subscribe("drift.acme.evt.>")
        await upstream.flush()
        assert errors.empty()
        await upstream.subscribe("drift.globex.evt.>")
        await upstream.flush()
        refused = await asyncio.wait_for(errors.get(), 10)
        assert "permissions violation" in str(refused).lower() and "globex" in str(refused)
    finally:
        await upstream.close()
        await service.close()
