"""A nats-server started with the shipped config/nats/tenants.conf (the tenants' authorization)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient

from drift_cli.servers import ManagedProcess, find_executable, free_port, tcp_probe

CONFIG = Path(__file__).parents[2] / "config" / "nats" / "tenants.conf"


@asynccontextmanager
async def tenants_nats(home: Path) -> AsyncIterator[str]:
    """Serve the shipped tenants.conf on a free loopback port, JetStream data under `home`; yields its URL.

    Users: `drift` (password service-pw) and `acme-upstream` (password acme-pw).
    """
    port = free_port()
    config = (
        CONFIG.read_text()
        .replace("port: 4222", f'listen: "127.0.0.1:{port}"')
        .replace('"/data/nats"', f'"{home / "js"}"')
    )
    path = home / "tenants.conf"
    path.write_text(config)
    env = {"DRIFT_NATS_PASSWORD": "service-pw", "ACME_NATS_PASSWORD": "acme-pw"}
    server = ManagedProcess(
        "nats-auth", [str(find_executable("nats-server")), "-c", str(path)], log_path=home / "nats.log", env=env
    )
    server.start()
    try:
        await server.wait_ready(tcp_probe("127.0.0.1", port), timeout=30)
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.stop()


@asynccontextmanager
async def service_and_upstream(url: str) -> AsyncIterator[tuple[NatsClient, NatsClient, asyncio.Queue[Exception]]]:
    """Connect as Drift's service user and as acme's upstream user; yields both and the upstream's errors.

    The server reports a refused publish or subscribe asynchronously: it lands in the queue.
    """
    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def on_error(error: Exception) -> None:
        await errors.put(error)

    service = await nats.connect(url, user="drift", password="service-pw")
    try:
        upstream = await nats.connect(url, user="acme-upstream", password="acme-pw", error_cb=on_error)
        try:
            yield service, upstream, errors
        finally:
            await upstream.close()
    finally:
        await service.close()
