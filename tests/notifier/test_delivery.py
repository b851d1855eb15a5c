"""The webhook consumer on a real JetStream: a tenant with hanging receivers never delays another's webhooks.

Each test uses a stream and durable consumer of its own (on the session's NATS), so it never
touches the platform's `DRIFT_EVENTS` stream that other suites share.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from prometheus_client import REGISTRY

from drift_cli.servers import InfraStack
from drift_notifier.config import WebhookLimits
from drift_notifier.delivery import WebhookConsumer
from drift_notifier.webhooks import WebhookSender, http_client
from drift_runtime import messaging
from drift_runtime.ssrf import Guard
from drift_schema import codec
from drift_schema.events import WorkflowEvent
from drift_schema.statuses import WorkflowStatus
from notifier.stubs import Gate
from notifier.test_webhook_sender import SECRET

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIMITS = WebhookLimits(
    header_timeout_s=20.0, total_timeout_s=30.0, concurrency=16, tenant_concurrency=2, tenant_backlog=3, max_held=32
)


class RecordingSender(WebhookSender):
    """The real sender, noting the attempt number each delivery was made with."""

    attempts: list[tuple[str, int]]

    async def deliver(self, event: WorkflowEvent, attempt: int) -> None:
        self.attempts.append((event.event_id, attempt))
        await super().deliver(event, attempt)


@dataclass
class Rig:
    js: JetStreamContext
    stream: str
    prefix: str
    consumer: WebhookConsumer
    sender: RecordingSender

    async def publish(
        self,
        tenant: str,
        n: int,
        url: str,
        status: WorkflowStatus = WorkflowStatus.COMPLETED,
        context: dict[str, object] | None = None,
    ) -> None:
        for i in range(n):
            workflow_id = f"{tenant}-{i}"
            event = WorkflowEvent(
                workflow_id=workflow_id,
                workflow_status=status,
                event_id=f"{self.prefix}-{workflow_id}:s1",
                tenant=tenant,
                seq=1,
                callback_url=url,
                context=context,
            )
            await self.js.publish(f"{self.prefix}.{tenant}.evt.workflow.{workflow_id}", codec.encode(event))


@pytest_asyncio.fixture(loop_scope="session")
async def rig(infra: InfraStack) -> AsyncIterator[Rig]:
    nc = await messaging.connect(infra.nats_url, name="notifier-delivery-test")
    js = nc.jetstream()
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"TEST_HOOKS_{tag}", f"hooks{tag}"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.*.evt.>"], storage=StorageType.MEMORY))
    async with http_client(LIMITS) as http:
        sender = RecordingSender(http, SECRET, Guard(["127.0.0.1"]), LIMITS)
        sender.attempts = []
        consumer = WebhookConsumer(
            js,
            sender,
            LIMITS,
            durable=f"hooks-{tag}",
            stream=stream,
            filter_subject=f"{prefix}.*.evt.workflow.*",
            defer_base_s=0.2,
        )
        yield Rig(js, stream, prefix, consumer, sender)
    await js.delete_stream(stream)
    await nc.close()


def deferred() -> float:
    return REGISTRY.get_sample_value("drift_webhook_deferred_total") or 0.0


async def test_hanging_receivers_hold_only_their_tenants_share_and_nothing_is_lost(rig: Rig) -> None:
    """Mallory's 12 hanging webhooks use 2 slots and 3 held events; globex's arrive at once; all land exactly once."""
    deferred_before = deferred()
    stop = asyncio.Event()
    async with Gate() as hanging, Gate() as healthy:
        healthy.opened.set()
        await rig.publish("mallory", 12, hanging.url, context={"blob": "x" * 100_000})
        # Events that are no webhook (not a stable state) are acked on the spot and never sent.
        await rig.publish("acme", 3, healthy.url, status=WorkflowStatus.RUNNING)
        await rig.publish("globex", 4, healthy.url)
        running = asyncio.create_task(rig.consumer.run(stop))
        try:
            assert await healthy.wait_until(lambda: len(healthy.requests) >= 4, 5.0), "globex waited for mallory"
            assert hanging.open_now == LIMITS.tenant_concurrency, "mallory used more than its share"
            assert len(hanging.requests) == LIMITS.tenant_concurrency
            assert deferred() > deferred_before, "mallory's events past its backlog were handed back, not held"
            held = list(rig.consumer.held.values())
            assert held and all(e.event.context is None and not e.msg.data for e in held), "held events are lean"

            hanging.opened.set()
            assert await hanging.wait_until(lambda: len(hanging.requests) >= 12, 30.0), len(hanging.requests)
        finally:
            stop.set()
            await running
    ids = [request.headers["webhook-id"] for request in hanging.requests + healthy.requests]
    assert len(ids) == len(set(ids)) == 16, "every webhook once, none doubled"
    assert not any("-acme-" in i for i in ids), "no webhook for a state that is not stable"
    # A deferral is not an attempt: every webhook went out as attempt 1.
    assert {attempt for _, attempt in rig.sender.attempts} == {1}
    info = await rig.js.consumer_info(rig.stream, rig.consumer.durable)
    assert (info.num_pending, info.num_ack_pending) == (0, 0), "every event acked"


async def test_a_consumer_made_by_an_older_notifier_gets_the_new_limits(rig: Rig) -> None:
    """An existing durable with a 26-delivery cap and a 512 window is updated in place, keeping its position."""
    old = rig.consumer.consumer_config()
    old.max_deliver, old.max_ack_pending = 26, 512
    await rig.js.add_consumer(rig.stream, old)
    async with Gate() as healthy:
        healthy.opened.set()
        await rig.publish("globex", 2, healthy.url)
        stop = asyncio.Event()
        running = asyncio.create_task(rig.consumer.run(stop))
        try:
            assert await healthy.wait_until(lambda: len(healthy.requests) >= 2, 5.0)
        finally:
            stop.set()
            await running
    info = await rig.js.consumer_info(rig.stream, rig.consumer.durable)
    assert (info.config.max_deliver, info.config.max_ack_pending) == (-1, LIMITS.max_held)


async def test_a_shutdown_hands_back_queued_and_hanging_webhooks_to_the_next_notifier(rig: Rig) -> None:
    """Stopping with attempts hanging and events queued loses none: the next consumer delivers every one."""
    consumer = dataclasses.replace(rig.consumer, shutdown_grace_s=0.3, held={}, deferrals=OrderedDict())
    async with Gate() as receiver:
        await rig.publish("mallory", 3, receiver.url)
        stop = asyncio.Event()
        running = asyncio.create_task(consumer.run(stop))
        assert await receiver.wait_until(lambda: len(receiver.requests) >= LIMITS.tenant_concurrency, 5.0)
        stop.set()
        await asyncio.wait_for(running, 5.0)

        receiver.opened.set()
        successor = asyncio.Event()
        running = asyncio.create_task(rig.consumer.run(successor))
        try:
            delivered = lambda: {r.headers["webhook-id"] for r in receiver.requests}  # noqa: E731
            assert await receiver.wait_until(lambda: len(delivered()) == 3, 10.0)
        finally:
            successor.set()
            await running
    info = await rig.js.consumer_info(rig.stream, rig.consumer.durable)
    assert (info.num_pending, info.num_ack_pending) == (0, 0), "every event acked once delivered"
