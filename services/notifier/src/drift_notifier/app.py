"""The notifier process: workflow status events to Redis (last state + sync waiters)."""

from __future__ import annotations

import asyncio

import structlog
from redis.asyncio import Redis

from drift_notifier.config import Settings
from drift_notifier.states import LastStates
from drift_notifier.webhooks import MAX_ATTEMPTS, WebhookSender, http_client
from drift_runtime import messaging
from drift_runtime.health import serve_health
from drift_runtime.process import run_until_signalled
from drift_runtime.ssrf import Guard
from drift_schema import subjects

log = structlog.get_logger("drift.notifier")

CONSUMER = messaging.ConsumerSpec(
    stream=subjects.EVENT_STREAM, durable="notifier-states", filter_subject=subjects.WORKFLOW_EVENT_SUBJECTS
)
WEBHOOK_CONSUMER = messaging.ConsumerSpec(
    stream=subjects.EVENT_STREAM,
    durable="notifier-webhooks",
    filter_subject=subjects.WORKFLOW_EVENT_SUBJECTS,
    max_deliver=MAX_ATTEMPTS + 1,
    concurrency=16,
)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    nc = await messaging.connect(settings.nats_url, name="drift-notifier")
    js = nc.jetstream()
    await messaging.ensure_streams(js, settings.stream_replicas)
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=15)
    states = LastStates(redis, settings.last_state_ttl_s)

    async def ready() -> bool:
        return nc.is_connected and bool(await redis.ping())

    health = await serve_health(settings.metrics_port, ready, host=settings.bind_host)
    consumers = [messaging.consume(js, CONSUMER, states.handle, stop, name="drift-notifier")]
    http = http_client()
    if settings.webhook_secret:
        sender = WebhookSender(http, settings.webhook_secret, Guard(settings.http_allow_hosts))
        consumers.append(messaging.consume(js, WEBHOOK_CONSUMER, sender.handle, stop, name="drift-notifier"))
    else:
        log.warning("notifier.webhooks_disabled", reason="DRIFT_WEBHOOK_SECRET is not set")
    log.info("notifier.started_consuming")
    await asyncio.gather(*consumers)
    health.close()
    await http.aclose()
    await redis.aclose()
    await nc.drain()


def main() -> None:
    settings = Settings.from_env()
    run_until_signalled("drift-notifier", settings.log_format, settings.log_level, lambda stop: run(settings, stop))
