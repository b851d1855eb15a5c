"""NATS authorization (contract 14): the shipped example and the NATS the test fixtures and `drift dev` start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import nats
import pytest
import pytest_asyncio
from support.nats_auth import assert_refused, assert_tenant_confined, service_and_upstream, tenants_nats

from drift_cli.nats_auth import tenant_passwords
from drift_cli.servers import InfraStack
from drift_client.events import LiveOnly, connect_as_tenant, follow_events
from drift_runtime import messaging
from drift_schema import subjects
from drift_schema.events import WorkflowEvent
from drift_schema.statuses import WorkflowStatus


@pytest_asyncio.fixture(loop_scope="session")
async def secured_nats(tmp_path: Path) -> AsyncIterator[str]:
    """A nats-server started with config/nats/tenants.conf on a free loopback port."""
    async with tenants_nats(tmp_path) as url:
        yield url


async def test_upstream_user_reaches_only_its_tenant(secured_nats: str) -> None:
    """acme's user may send acme commands and read acme events, and is refused globex's subjects."""
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
        secured_nats, user="acme", password="acme-pw", inbox_prefix="_INBOX_acme", error_cb=on_error
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


async def test_example_config_refuses_a_connection_without_credentials(secured_nats: str) -> None:
    """The shipped tenants.conf refuses an anonymous client and a wrong password."""
    await assert_refused(secured_nats)
    await assert_refused(secured_nats, user="acme", password="not-acme-pw")


async def test_fixture_nats_confines_each_tenant_to_its_subjects(infra: InfraStack) -> None:
    """The test infra's NATS (as drift dev starts it) refuses anonymous clients and confines each admitted tenant."""
    # Tenants of their own: the session's NATS is shared, and a platform admits its tenants the same way.
    keys = {"key-probe-a": "probe-a", "key-probe-b": "probe-b"}
    await infra.authorize_tenants(keys)
    await assert_tenant_confined(infra.nats_url, "probe-a", "key-probe-a", "probe-b")
    await assert_tenant_confined(infra.nats_url, "probe-b", "key-probe-b", "probe-a")


async def test_fixture_nats_takes_a_tenants_new_key_and_refuses_the_old(infra: InfraStack) -> None:
    """Re-admitting a tenant with another API key lets the new key in and keeps the old one out."""
    bare = messaging.split_credentials(infra.nats_url).url
    await infra.authorize_tenants({"key-rotate-1": "probe-rotate"})
    first = await nats.connect(bare, user="probe-rotate", password="key-rotate-1")
    await first.close()
    await infra.authorize_tenants({"key-rotate-2": "probe-rotate"})
    await assert_refused(bare, user="probe-rotate", password="key-rotate-1")
    second = await nats.connect(bare, user="probe-rotate", password="key-rotate-2")
    await second.close()


def test_tenant_named_like_the_service_user_is_refused() -> None:
    """A tenant called `drift` would share the services' NATS user and inbox prefix: it is refused."""
    with pytest.raises(ValueError, match="reserved"):
        tenant_passwords({"k": "acme", "k2": messaging.SERVICE_USER})
    assert tenant_passwords({"k1": "acme", "k2": "acme", "k3": "globex"}) == {"acme": "k1", "globex": "k3"}


def test_urls_carry_credentials_that_logs_never_show() -> None:
    """split_credentials percent-decodes a URL's user and password; redact_url hides the password."""
    url = "nats://drift:p%40ss%3Aw0rd@127.0.0.1:4222"
    assert messaging.split_credentials(url) == messaging.NatsServer(
        "nats://127.0.0.1:4222", user="drift", password="p@ss:w0rd"
    )
    assert messaging.split_credentials("nats://tok@nats:4222") == messaging.NatsServer("nats://nats:4222", token="tok")
    assert messaging.split_credentials("nats://nats:4222") == messaging.NatsServer("nats://nats:4222")
    assert messaging.redact_url(url) == "nats://drift:***@127.0.0.1:4222"
    assert messaging.redact_url("nats://tok@nats:4222") == "nats://***@nats:4222"
    assert messaging.redact_url("nats://nats:4222") == "nats://nats:4222"


async def test_client_follows_a_runs_events_as_its_tenant(infra: InfraStack) -> None:
    """drift_client.follow_events with a tenant's API key reads that run's new events on the tenant's own user."""
    await infra.authorize_tenants({"key-follower": "follower"})
    with pytest.raises(LiveOnly):
        await anext(follow_events(infra.nats_url, "follower", "run-1", api_key="key-follower"))
    events = follow_events(infra.nats_url, "follower", "run-1", follow=True, api_key="key-follower")
    first = asyncio.ensure_future(anext(events))
    service = await messaging.connect(infra.nats_url, "follow-test")
    try:
        event = WorkflowEvent(workflow_id="run-1", workflow_status=WorkflowStatus.RUNNING, tenant="follower", seq=1)
        # The subscription starts with the iteration, at a moment the test cannot see: publish until it is heard.
        while not first.done():
            await service.publish(subjects.workflow_events("follower", "run-1"), msgspec.json.encode(event))
            await asyncio.wait({first}, timeout=0.2)
        assert first.result() == event
    finally:
        await events.aclose()
        await service.close()


async def test_tenant_connection_publishes_its_commands_through_jetstream(infra: InfraStack) -> None:
    """connect_as_tenant connects with the tenant's inbox prefix, so its JetStream publishes are acknowledged."""
    await infra.authorize_tenants({"key-publisher": "publisher"})
    client = await connect_as_tenant(infra.nats_url, "publisher", "key-publisher")
    service = await messaging.connect(infra.nats_url, "publish-test")
    try:
        await messaging.ensure_streams(service.jetstream())
        assert client.new_inbox().startswith("_INBOX_publisher.")
        ack = await client.jetstream().publish(
            subjects.command("publisher", "probe"), b"{}", headers={"Nats-Msg-Id": "p-1"}, timeout=10
        )
        assert ack.stream == subjects.COMMAND_STREAM
    finally:
        await client.close()
        await service.close()
