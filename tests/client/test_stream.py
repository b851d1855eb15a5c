"""drift_client.stream: NATS credentials split from a URL, and a subject's history replayed on a real JetStream."""

from __future__ import annotations

import uuid

import nats
from nats.js.api import StorageType, StreamConfig

from drift_cli.servers import InfraStack
from drift_client.stream import NatsServer, replay, split_credentials
from drift_schema import ids


def test_credentials_are_split_from_the_url_and_percent_decoded() -> None:
    """A user and password (or a token) leave the URL, percent-decoded; a URL without them stays whole."""
    assert split_credentials("nats://drift:p%40ss%3Aword@127.0.0.1:4222") == NatsServer(
        "nats://127.0.0.1:4222", user=ids.SERVICE_USER, password="p@ss:word"
    )
    assert split_credentials("nats://tok@nats:4222") == NatsServer("nats://nats:4222", token="tok")
    assert split_credentials("nats://nats:4222") == NatsServer("nats://nats:4222")


def test_drifts_inbox_is_its_service_users() -> None:
    """The service connections' inbox prefix is the one a tenant named like the service user would get."""
    assert ids.tenant_inbox_prefix(ids.SERVICE_USER) == ids.SERVICE_INBOX_PREFIX
    assert ids.tenant_inbox_prefix("acme") == "_INBOX_acme"


async def test_replay_yields_the_stored_messages_in_order_then_stops(infra: InfraStack) -> None:
    """Without follow, replay gives every stored message of the subject in stream order and returns once caught up."""
    server = split_credentials(infra.nats_url)
    connection = await nats.connect(
        server.url, user=server.user, password=server.password, inbox_prefix=ids.SERVICE_INBOX_PREFIX
    )
    tag = uuid.uuid4().hex[:10]
    stream, subject = f"TEST_REPLAY_{tag}", f"replay{tag}.run"
    try:
        js = connection.jetstream()
        await js.add_stream(StreamConfig(name=stream, subjects=[f"replay{tag}.>"], storage=StorageType.MEMORY))
        for index in range(3):
            await js.publish(subject, str(index).encode())
        await js.publish(f"replay{tag}.other", b"not mine")
        assert [msg.data async for msg in replay(js, subject, stream)] == [b"0", b"1", b"2"]
        assert [msg async for msg in replay(js, subject, f"NO_SUCH_{tag}")] == []
        await js.delete_stream(stream)
    finally:
        await connection.close()
