"""Each run's last state in Redis, and its announcement to sync waiters."""

from __future__ import annotations

import msgspec
import structlog
from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from redis.exceptions import RedisError

from drift_runtime import metrics
from drift_runtime.messaging import PoisonMessage, TransientFault
from drift_schema import codec, ids, redis_keys
from drift_schema.events import WorkflowEvent
from drift_schema.statuses import WorkflowStatus

log = structlog.get_logger("drift.notifier")
tracer = trace.get_tracer("drift.notifier.states")

# Written and announced atomically, and only when newer: a redelivered or late
# event never moves a run's last state backwards. A new run reusing the id
# (another first-execution run id) always replaces the old one's state.
STORE_AND_ANNOUNCE = """
local run = redis.call('HGET', KEYS[1], 'run')
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if run == ARGV[1] and seq >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'run', ARGV[1], 'seq', ARGV[2], 'body', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 1
"""


def decode_event(msg: Msg) -> WorkflowEvent:
    """The workflow event a message carries; PoisonMessage (never redelivered) when it cannot be read."""
    try:
        return codec.decode_with(codec.workflow_event_decoder, msg.data)
    except codec.DecodeError as error:
        raise PoisonMessage(f"undecodable workflow event: {error}") from None


def run_of(event: WorkflowEvent) -> str:
    """The run chain an event belongs to (see drift_schema.ids for the shapes of event ids)."""
    return ids.run_chain_of(event.event_id)


class LastStates:
    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.script = redis.register_script(STORE_AND_ANNOUNCE)

    async def handle(self, msg: Msg) -> None:
        event = decode_event(msg)
        body = msg.data
        if event.context is not None or event.context_omitted:
            # The context is for the run-context store; Redis and the sync waiters need only the state.
            body = codec.encode(msgspec.structs.replace(event, context=None, context_omitted=False))
        channel = redis_keys.run_channel(event.tenant, event.workflow_id)
        # The hop back to the sync waiter: the last-state write and the announcement on the run's channel.
        attributes = {"db.system": "redis", "messaging.system": "redis", "messaging.destination.name": channel}
        with tracer.start_as_current_span(f"{channel} publish", kind=SpanKind.PRODUCER, attributes=attributes):
            try:
                if event.workflow_status == WorkflowStatus.REJECTED:
                    # A rejection concerns one command, not the run: announce it, keep the state.
                    await self.redis.publish(channel, body)
                    return
                stored = await self.script(
                    keys=[redis_keys.last_state(event.tenant, event.workflow_id), channel],
                    args=[run_of(event), event.seq, body, self.ttl_s],
                )
            except RedisError as error:
                raise TransientFault(f"redis unavailable: {error}") from None
        if stored:
            metrics.run_statuses.labels(event.workflow_status.value).inc()
        log.info(
            "notifier.state_stored" if stored else "notifier.state_stale",
            tenant=event.tenant,
            workflow_id=event.workflow_id,
            status=event.workflow_status,
            seq=event.seq,
        )
