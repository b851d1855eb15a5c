"""Sync waiters on real Redis and NATS: answers published after subscribing, or missed and recovered."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import nats
from redis.asyncio import Redis

from drift_cli.servers import InfraStack
from drift_gateway.waiters import RunWaiter, StatusEventWaiter, stored_answer
from drift_runtime.messaging import ensure_streams, publish
from drift_schema import redis_keys, subjects
from drift_schema.events import WorkflowEvent
from drift_schema.statuses import WorkflowStatus
from gateway.gateway_support import status_event


async def test_waiter_answers_with_its_own_commands_stable_state(infra: InfraStack) -> None:
    """Announcements of other commands and non-stable states are skipped; the caller's stable state answers."""
    redis = Redis.from_url(infra.redis_url)
    workflow_id = uuid.uuid4().hex
    channel = redis_keys.run_channel("acme", workflow_id)
    async with RunWaiter(redis, "acme", workflow_id) as waiter:
        await redis.publish(channel, status_event(workflow_id, WorkflowStatus.WAITING, "someone-else", 1))
        await redis.publish(channel, status_event(workflow_id, WorkflowStatus.RUNNING, "mine", 2))
        await redis.publish(channel, status_event(workflow_id, WorkflowStatus.COMPLETED, "mine", 3))
        answer = await waiter.wait("mine", timeout_s=10)
    assert answer is not None and answer.workflow_status == WorkflowStatus.COMPLETED and answer.seq == 3
    await redis.aclose()


async def test_a_missed_announcement_is_recovered_from_the_last_state(infra: InfraStack) -> None:
    """When the answer was stored but its announcement never reached the waiter, the last-state key answers."""
    redis = Redis.from_url(infra.redis_url)
    workflow_id = uuid.uuid4().hex
    key = redis_keys.last_state("acme", workflow_id)
    async with RunWaiter(redis, "acme", workflow_id) as waiter:
        # Stored without an announcement, as if the pub/sub message was lost on the way.
        await redis.hset(
            key,
            mapping={"run": "run-1", "seq": 2, "body": status_event(workflow_id, WorkflowStatus.WAITING, "mine", 2)},
        )
        answer = await waiter.wait("mine", timeout_s=0.2)
    assert answer is not None and answer.workflow_status == WorkflowStatus.WAITING
    await redis.aclose()


async def test_no_answer_by_the_deadline_is_none(infra: InfraStack) -> None:
    """Without an answer for the caller's command the waiter gives up at its deadline (the gateway then says 202)."""
    redis = Redis.from_url(infra.redis_url)
    workflow_id = uuid.uuid4().hex
    async with RunWaiter(redis, "acme", workflow_id) as waiter:
        started = asyncio.get_running_loop().time()
        assert await waiter.wait("mine", timeout_s=0.3) is None
        assert asyncio.get_running_loop().time() - started < 5
    await redis.aclose()


def _workflow_event(workflow_id: str, status: WorkflowStatus, command_id: str, seq: int) -> WorkflowEvent:
    return msgspec.json.decode(status_event(workflow_id, status, command_id, seq), type=WorkflowEvent)


async def test_status_event_waiter_answers_with_its_own_commands_stable_state(infra: InfraStack) -> None:
    """Redis down: the run's NATS status events answer, skipping other commands' and non-stable states."""
    nc = await nats.connect(infra.nats_url)
    workflow_id = uuid.uuid4().hex
    subject = subjects.workflow_events("acme", workflow_id)
    async with StatusEventWaiter(nc, "acme", workflow_id) as waiter:
        # Published right after subscribing, as the gateway publishes its command: none may be missed.
        await nc.publish(subject, status_event(workflow_id, WorkflowStatus.WAITING, "someone-else", 1))
        await nc.publish(subject, status_event(workflow_id, WorkflowStatus.RUNNING, "mine", 2))
        await nc.publish(subject, b"not an event")
        await nc.publish(subject, status_event(workflow_id, WorkflowStatus.WAITING, "mine", 3))
        answer = await waiter.wait("mine", timeout_s=10)
        assert answer is not None and answer.workflow_status == WorkflowStatus.WAITING and answer.seq == 3
        assert await waiter.wait("mine-too", timeout_s=0.2) is None
    await nc.close()


async def test_an_answer_already_in_the_event_stream_is_found(infra: InfraStack) -> None:
    """After Redis failed mid-wait, an answer published before the NATS subscription is read back from the stream."""
    nc = await nats.connect(infra.nats_url)
    js = nc.jetstream()
    await ensure_streams(js)
    workflow_id = uuid.uuid4().hex
    subject = subjects.workflow_events("acme", workflow_id)
    for event in (
        _workflow_event(workflow_id, WorkflowStatus.COMPLETED, "other", 1),
        _workflow_event(workflow_id, WorkflowStatus.WAITING, "mine", 2),
    ):
        await publish(js, subject, event, event.event_id)
    found = await stored_answer(js, "acme", workflow_id, "mine")
    assert found is not None and found.seq == 2
    assert await stored_answer(js, "acme", workflow_id, "nobody") is None
    await nc.close()
