"""Run channels over one shared Redis connection, on real Redis: confirmed, shared, left, and failed."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from drift_cli.servers import InfraStack, free_port
from drift_gateway.channels import ChannelsFailed, RunChannels
from drift_gateway.waiters import RunWaiter
from drift_schema import redis_keys
from drift_schema.statuses import WorkflowStatus
from gateway.gateway_support import status_event


def _channel() -> str:
    return redis_keys.run_channel("acme", uuid.uuid4().hex)


async def _subscribers(redis: Redis, channel: str) -> int:
    counts = await redis.pubsub_numsub(channel)
    return int(counts[0][1])


async def _left(redis: Redis, channel: str) -> None:
    """Until Redis has applied the shared connection's UNSUBSCRIBE (another connection sees it only then)."""
    async with asyncio.timeout(5):
        while await _subscribers(redis, channel):
            pass


async def test_a_confirmed_watch_gets_every_later_message_and_watches_of_one_run_share_it(infra: InfraStack) -> None:
    """Once subscribe() returns Redis holds the subscription; two watches of one channel share one and both get
    each message; other channels' messages reach neither."""
    redis = Redis.from_url(infra.redis_url)
    channels = RunChannels(redis)
    channel, other = _channel(), _channel()
    try:
        first = await channels.subscribe(channel, 5)
        second = await channels.subscribe(channel, 5)
        watching_other = await channels.subscribe(other, 5)
        assert await _subscribers(redis, channel) == 1
        assert await redis.publish(channel, b"one") == 1
        assert await first.next(5) == b"one"
        assert await second.next(5) == b"one"
        assert await watching_other.next(0.05) is None
        await channels.unsubscribe(first)
        await redis.publish(channel, b"two")
        assert await second.next(5) == b"two"
        await channels.unsubscribe(second)
        await channels.unsubscribe(watching_other)
        await _left(redis, channel)
        await _left(redis, other)
    finally:
        await channels.close()
        await redis.aclose()


async def test_a_lost_connection_ends_every_watch_and_the_next_subscription_opens_a_new_one(infra: InfraStack) -> None:
    """A killed shared connection fails each watch on it with a RedisError (never a silent resubscription that
    could miss announcements); the next subscription opens a new connection and hears its channel again."""
    redis = Redis.from_url(infra.redis_url)
    channels = RunChannels(redis)
    channel = _channel()
    try:
        watch = await channels.subscribe(channel, 5)
        await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        with pytest.raises(ChannelsFailed):
            await watch.next(10)
        await channels.unsubscribe(watch)
        again = await channels.subscribe(channel, 5)
        await redis.publish(channel, b"after")
        assert await again.next(5) == b"after"
        await channels.unsubscribe(again)
    finally:
        await channels.close()
        await redis.aclose()


async def test_many_calls_subscribing_at_once_are_each_confirmed(infra: InfraStack) -> None:
    """Concurrent subscriptions to many channels (some to the same run) all return confirmed and hear their run."""
    redis = Redis.from_url(infra.redis_url)
    channels = RunChannels(redis)
    names = [_channel() for _ in range(20)]
    try:
        watches = await asyncio.gather(*(channels.subscribe(names[i % 20], 5) for i in range(60)))
        for name in names:
            assert await redis.publish(name, name.encode()) == 1
        for i, watch in enumerate(watches):
            assert await watch.next(5) == names[i % 20].encode()
        await asyncio.gather(*(channels.unsubscribe(watch) for watch in watches))
    finally:
        await channels.close()
        await redis.aclose()


async def test_a_waiter_over_the_shared_connection_answers_with_its_commands_stable_state(infra: InfraStack) -> None:
    """RunWaiter over RunChannels: other commands' and non-stable states are skipped, its stable one answers.

    Left, the run's channel has no subscriber."""
    redis = Redis.from_url(infra.redis_url)
    channels = RunChannels(redis)
    workflow_id = uuid.uuid4().hex
    channel = redis_keys.run_channel("acme", workflow_id)

    try:
        async with RunWaiter(redis, "acme", workflow_id, channels) as waiter:
            await redis.publish(channel, status_event(workflow_id, WorkflowStatus.WAITING, "someone-else", 1))
            await redis.publish(channel, status_event(workflow_id, WorkflowStatus.RUNNING, "mine", 2))
            await redis.publish(channel, status_event(workflow_id, WorkflowStatus.WAITING, "mine", 3))
            answer = await waiter.wait("mine", timeout_s=10)
        assert answer is not None and answer.workflow_status == WorkflowStatus.WAITING and answer.seq == 3
        await _left(redis, channel)
    finally:
        await channels.close()
        await redis.aclose()


async def test_with_redis_unreachable_every_waiting_call_fails_with_the_one_attempt() -> None:
    """Calls subscribing while Redis cannot be reached share one connection attempt and all fail with a RedisError
    at once (their NATS fallback), none waiting out the attempts of the calls before it."""
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    channels = RunChannels(redis)
    try:
        outcomes = await asyncio.gather(*(channels.subscribe(_channel(), 5) for _ in range(10)), return_exceptions=True)
        assert all(isinstance(outcome, RedisError) for outcome in outcomes), outcomes
    finally:
        await channels.close()
        await redis.aclose()
