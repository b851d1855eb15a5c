"""The notifier process: workflow status events to Redis (last state + sync waiters)."""

from __future__ import annotations

import asyncio

import structlog
from drift_runtime import messaging
from drift_runtime.health import serve_health
from drift_runtime.process import run_until_signalled
from drift_schema import subjects
from redis.asyncio import Redis

from drift_notifier.config import Settings
from drift_notifier.states import LastStates

log = structlog.get_logger("drift.notifier")

CONSUMER = messaging.ConsumerSpec(
    stream=subjects.EVENT_STREAM, durable="notifier-states", filter_subject=subjects.WORKFLOW_EVENT_SUBJECTS
)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    nc = await messaging.connect(settings.nats_url, name="drift-notifier")
    js = nc.jetstream()
    await messaging.ensure_streams(js)
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=15)
    states = LastStates(redis, settings.last_state_ttl_s)

    async def ready() -> bool:
        return nc.is_connected and bool(await redis.ping())

    health = await serve_health(settings.metrics_port, ready)
    log.info("notifier.started_consuming", durable=CONSUMER.durable)
    await messaging.consume(js, CONSUMER, states.handle, stop, name="drift-notifier")
    health.close()
    await redis.aclose()
    await nc.drain()


def main() -> None:
    settings = Settings.from_env()
    run_until_signalled("drift-notifier", settings.log_format, settings.log_level, lambda stop: run(settings, stop))
