"""Authenticated NATS for tests: the shipped config/nats/tenants.conf, and probes an outside client makes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient

from drift_cli.servers import ManagedProcess, find_executable, free_port, tcp_probe
from drift_runtime import messaging
from drift_schema import subjects

CONFIG = Path(__file__).parents[2] / "config" / "nats" / "tenants.conf"


@asynccontextmanager
async def tenants_nats(home: Path) -> AsyncIterator[str]:
    """Serve the shipped tenants.conf on a free loopback port, JetStream data under `home`; yields its URL.

    Users: `drift` (password service-pw) and tenant `acme` (password acme-pw, standing for its API key).
    """
    port = free_port()
    config = (
        CONFIG.read_text()
        .replace("port: 4222", f'listen: "127.0.0.1:{port}"')
        .replace('"/data/nats"', f'"{home / "js"}"')
    )
    path = home / "tenants.conf"
    path.write_text(config)
    env = {"DRIFT_NATS_PASSWORD": "service-pw", "ACME_API_KEY": "acme-pw"}
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
    """Connect as Drift's service user and as tenant acme's user; yields both and the tenant's errors.

    The server reports a refused publish or subscribe asynchronously: it lands in the queue.
    """
    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def on_error(error: Exception) -> None:
        await errors.put(error)

    service = await nats.connect(url, user="drift", password="service-pw")
    try:
        upstream = await nats.connect(url, user="acme", password="acme-pw", error_cb=on_error)
        try:
            yield service, upstream, errors
        finally:
            await upstream.close()
    finally:
        await service.close()


async def _quiet(_: Exception) -> None:
    """nats-py's default error callback logs a traceback; a refusal is what these probes expect."""


async def assert_refused(url: str, user: str | None = None, password: str | None = None) -> None:
    """A client connecting to `url` as `user` (None: anonymous) is refused with an authorization error."""
    with pytest.raises(nats.errors.Error, match=r"(?i)authorization violation"):
        client = await nats.connect(
            url,
            user=user,
            password=password,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=5,
            error_cb=_quiet,
        )
        await client.close()


async def _refusal(errors: asyncio.Queue[Exception]) -> str:
    return str(await asyncio.wait_for(errors.get(), 10)).lower()


async def assert_tenant_confined(service_url: str, tenant: str, api_key: str, other: str) -> None:
    """Probe the NATS at `service_url` (the services' URL, with their credentials) as `tenant`'s outside client.

    Checks, as contract 14 has it: no credentials or a wrong key is refused; `tenant` (user `<tenant>`,
    its API key, inbox prefix `_INBOX_<tenant>`) gets its JetStream command acknowledged and reads its
    events; it may neither publish `other`'s commands nor subscribe to `other`'s events, `_INBOX.>`,
    `_INBOX_drift.>` or `other`'s inboxes.
    """
    bare = messaging.split_credentials(service_url).url
    await assert_refused(bare)
    await assert_refused(bare, user=tenant, password=api_key + "-wrong")
    await assert_refused(bare, user=messaging.SERVICE_USER, password=api_key)

    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def on_error(error: Exception) -> None:
        await errors.put(error)

    service = await messaging.connect(service_url, "nats-auth-probe")
    client = await nats.connect(
        bare,
        user=tenant,
        password=api_key,
        inbox_prefix=messaging.tenant_inbox_prefix(tenant),
        error_cb=on_error,
        allow_reconnect=False,
    )
    try:
        commands: asyncio.Queue[str] = asyncio.Queue()

        async def record(msg: nats.aio.msg.Msg) -> None:
            await commands.put(msg.subject)

        await service.subscribe(f"drift.{other}.cmd.>", cb=record)
        await service.subscribe(f"drift.{tenant}.cmd.>", cb=record)
        await service.flush()
        await messaging.ensure_streams(service.jetstream())

        # Its own command through JetStream: acknowledged on its own inbox.
        ack = await client.jetstream().publish(subjects.command(tenant, "probe"), b"{}", timeout=10)
        assert ack.stream == subjects.COMMAND_STREAM
        assert await asyncio.wait_for(commands.get(), 10) == subjects.command(tenant, "probe")
        assert errors.empty()

        # Another tenant's command never reaches the server's subscribers.
        await client.publish(subjects.command(other, "start"), b"{}")
        await client.flush()
        assert "permissions violation" in await _refusal(errors)
        await service.publish(subjects.command(tenant, "marker"), b"")
        await service.flush()
        assert await asyncio.wait_for(commands.get(), 10) == subjects.command(tenant, "marker")

        # Its own events arrive; subscribing to anyone else's, or to an inbox not its own, is refused.
        seen: asyncio.Queue[nats.aio.msg.Msg] = asyncio.Queue()
        await client.subscribe(f"drift.{tenant}.evt.>", cb=seen.put)
        await client.flush()
        await service.publish(subjects.workflow_events(tenant, "probe-run"), b'{"mine":true}')
        assert (await asyncio.wait_for(seen.get(), 10)).data == b'{"mine":true}'
        assert errors.empty()
        for pattern in (
            f"drift.{other}.evt.>",
            "drift.*.evt.>",
            ">",
            "_INBOX.>",
            f"{messaging.SERVICE_INBOX_PREFIX}.>",
            f"{messaging.tenant_inbox_prefix(other)}.>",
        ):
            await client.subscribe(pattern)
            await client.flush()
            refusal = await _refusal(errors)
            assert "permissions violation" in refusal and pattern.lower() in refusal, pattern
    finally:
        await client.close()
        await service.close()
