"""A consumer's fetch hands each message over as it comes, even one taken by a pull request the client gave up on."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from drift_cli.servers import InfraStack
from drift_runtime import consumers, messaging

pytestmark = pytest.mark.asyncio(loop_scope="session")

IDLE_WAIT_S = 30.0
"""How long an idle fetch waits: a message held until a pull request's expiry would arrive this late."""
PROMPT_S = 10.0
"""Well under IDLE_WAIT_S: a message fetched within it was not held for a request's expiry."""


async def pull_request_waiting(sub: JetStreamContext.PullSubscription) -> None:
    """Until the server holds a pull request of the subscription's consumer (the reader's first fetch)."""
    while (await sub.consumer_info()).num_waiting < 1:
        await asyncio.sleep(0.01)


async def test_a_message_taken_by_an_abandoned_pull_request_is_handed_over_at_once(infra: InfraStack) -> None:
    """A late "408 request timeout" makes a fetch give up while its pull request stays open on the server (the idle
    race of every fetch cycle); the messages that follow, taken by such requests, reach the reader at once, not when a
    request expires (nats-py's batch fetch held them until then)."""
    nc = await messaging.connect(infra.nats_url, "fetch-test")
    try:
        js = nc.jetstream()
        name = f"FETCH{uuid.uuid4().hex[:8]}"
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"], storage=StorageType.MEMORY))
        config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
        sub = await js.pull_subscribe(f"{name}.>", durable=None, stream=name, config=config)
        fetcher = consumers.Fetcher(sub, IDLE_WAIT_S)
        received: asyncio.Queue[bytes] = asyncio.Queue()

        async def read() -> None:
            while True:
                for msg in await fetcher.fetch(64):
                    received.put_nowait(msg.data)

        reader = asyncio.create_task(read())
        try:
            await pull_request_waiting(sub)
            # What the server sends when a pull request expires, arriving for a fetch that still waits on its own
            # request (nats-py's subscription inbox, where the server answers every pull request).
            # Sent on the connection that publishes the messages below, so it arrives before them.
            await nc.publish(sub._deliver, b"", headers={"Status": "408", "Description": "Request Timeout"})
            for body in (b"first", b"second", b"third"):
                await js.publish(f"{name}.x", body)
                async with asyncio.timeout(PROMPT_S):
                    assert await received.get() == body
        finally:
            reader.cancel()
        await js.delete_stream(name)
    finally:
        await nc.close()
