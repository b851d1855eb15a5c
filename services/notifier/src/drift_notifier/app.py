"""The notifier process: workflow status events to Redis (last state + sync waiters)."""

from __future__ import annotations

import asyncio

import structlog

from drift_notifier.config import Settings
from drift_notifier.contexts import RunContextWriter, store_client
from drift_notifier.delivery import WebhookConsumer
from drift_notifier.states import LastStates
from drift_notifier.webhooks import WebhookSender, http_client
from drift_runtime import messaging
from drift_runtime.health import serve_health
from drift_runtime.process import run_until_signalled
from drift_runtime.redis_client import connect_redis
from drift_runtime.ssrf import Guard
from drift_runtime.temporal import connect_temporal
from drift_schema import subjects

log = structlog.get_logger("drift.notifier")

# A Redis outage must not drop a run's state: its events wait in the stream until Redis is back.
# A short ack wait: states a dead notifier held come back in seconds, while sync waiters still wait
# (the handler is one Redis write; a redelivery is harmless, the highest seq wins).
CONSUMER = messaging.ConsumerSpec(
    stream=subjects.EVENT_STREAM,
    durable="notifier-states",
    filter_subject=subjects.WORKFLOW_EVENT_SUBJECTS,
    max_deliver=messaging.UNLIMITED_DELIVERIES,
    ack_wait_s=5.0,
)
# A dsl-store outage must not lose a run's stored state either: the writes wait in the stream, on their own
# consumer so that they never hold back the Redis announcements above.
CONTEXT_CONSUMER = messaging.ConsumerSpec(
    stream=subjects.EVENT_STREAM,
    durable="notifier-run-contexts",
    filter_subject=subjects.WORKFLOW_EVENT_SUBJECTS,
    max_deliver=messaging.UNLIMITED_DELIVERIES,
    concurrency=16,
)
# Webhooks have a consumer of their own making (`drift_notifier.delivery`): fair across tenants, bounded.


async def run(settings: Settings, stop: asyncio.Event) -> None:
    nc = await messaging.connect(settings.nats_url, name="drift-notifier", stop=stop)
    js = nc.jetstream()
    await messaging.ensure_streams(js, settings.stream_replicas)
    redis = connect_redis(settings.redis_url)
    states = LastStates(redis, settings.last_state_ttl_s)

    async def ready() -> bool:
        return nc.is_connected and bool(await redis.ping())

    health = await serve_health(settings.metrics_port, ready, host=settings.bind_host)
    consumers = [messaging.consume(js, CONSUMER, states.handle, stop, name="drift-notifier")]
    http = http_client(settings.webhooks)
    store = store_client(settings.dsl_store_url, settings.service_token)
    if settings.service_token:
        # Only for contexts too large to travel in their event; the client connects lazily.
        temporal = await connect_temporal(settings.temporal_address, settings.temporal_namespace, lazy=True)
        writer = RunContextWriter(store, temporal)
        consumers.append(messaging.consume(js, CONTEXT_CONSUMER, writer.handle, stop, name="drift-notifier"))
    else:
        log.warning("notifier.run_contexts_disabled", reason="DRIFT_SERVICE_TOKEN is not set")
    if settings.webhook_secret:
        sender = WebhookSender(http, settings.webhook_secret, Guard(settings.http_allow_hosts), settings.webhooks)
        consumers.append(WebhookConsumer(js, sender, settings.webhooks).run(stop))
    else:
        log.warning("notifier.webhooks_disabled", reason="DRIFT_WEBHOOK_SECRET is not set")
    log.info("notifier.started_consuming")
    await asyncio.gather(*consumers)
    health.close()
    await http.aclose()
    await store.aclose()
    await redis.aclose()
    await nc.drain()


def main() -> None:
    settings = Settings.from_env()
    run_until_signalled("drift-notifier", settings.log_format, settings.log_level, lambda stop: run(settings, stop))
