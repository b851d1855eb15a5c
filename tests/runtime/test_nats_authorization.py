"""The shipped NATS authorization confines an upstream user to its tenant's subjects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest_asyncio
from support.nats_auth import service_and_upstream, tenants_nats

from drift_runtime import messaging
from drift_schema import subjects


@pytest_asyncio.fixture(loop_scope="session")
async def secured_nats(tmp_path: Path) -> AsyncIterator[str]:
    """A nats-server started with config/nats/tenants.conf on a free loopback port."""
    async with tenants_nats(tmp_path) as url:
        yield url


async def test_upstream_user_reaches_only_its_tenant(secured_nats: str) -> None:
    """acme's upstream user may send acme commands and read acme events, and is refused globex's subjects."""
    async with service_and_upstream(secured_nats) as (service, upstream, errors):
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


async def test_upstream_user_has_only_its_own_inboxes(secured_nats: str) -> None:
    """acme's user, connected with inbox prefix `_INBOX_acme`, gets its JetStream acks and no one else's inbox."""
    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def on_error(error: Exception) -> None:
        await errors.put(error)

    service = await messaging.connect(secured_nats.replace("nats://", "nats://drift:service-pw@"), "auth-test")
    upstream = await nats.connect(
        secured_nats, user="acme-upstream", password="acme-pw", inbox_prefix="_INBOX_acme", error_cb=on_error
    )
    try:
        js = service.jetstream()
        await messaging.ensure_streams(js)
        # A command through JetStream: the acknowledgement comes back on the upstream's own inbox.
        ack = await upstream.jetstream().publish(subjects.command("acme", "start"), b"{}", timeout=10)
        assert ack.stream == subjects.COMMAND_STREAM and ack.seq >= 1
        assert errors.empty()

        for pattern in ("_INBOX.>", f"{messaging.SERVICE_INBOX_PREFIX}.>", "_INBOX_globex.>"):
            await upstream.subscribe(pattern)
            await upstream.flush()
            refused = await asyncio.wait_for(errors.get(), 10)
            assert "permissions violation" in str(refused).lower() and pattern.lower() in str(refused).lower()

        # An event Drift publishes carries Drift's reply inbox; acme's user sees it but may not answer it.
        seen: asyncio.Queue[nats.aio.msg.Msg] = asyncio.Queue()
        await upstream.subscribe("drift.acme.evt.>", cb=seen.put)
        await upstream.flush()
        await messaging.publish(js, subjects.node_events("acme", "r1"), b"{}", "auth-test-event")
        event = await asyncio.wait_for(seen.get(), 10)
        assert event.reply.startswith(f"{messaging.SERVICE_INBOX_PREFIX}.")
        await upstream.publish(event.reply, b'{"stream":"forged","seq":1,"duplicate":true}')
        await upstream.flush()
        forged = await asyncio.wait_for(errors.get(), 10)
        assert "permissions violation" in str(forged).lower()
    finally:
        await upstream.close()
        await service.close()
