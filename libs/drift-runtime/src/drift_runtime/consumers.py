"""The shape of a durable JetStream pull consumer that acknowledges each message itself.

The notifier's webhook consumer and the dispatcher's progress consumer are such consumers; they
differ only in what they read, how often a message may come back, and how many may be unacked.
"""

from __future__ import annotations

import asyncio

import structlog
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

log = structlog.get_logger("drift.messaging")

FETCH_FAILED_PAUSE_S = 0.5
"""How long a failed fetch is waited out, so that a consumer's loop does not spin while NATS comes back."""


def durable_explicit(
    durable: str, filter_subject: str, *, max_deliver: int, ack_wait_s: float, max_ack_pending: int
) -> ConsumerConfig:
    """A durable consumer of `filter_subject` from the stream's start, each message acked explicitly.

    `max_deliver` may be `drift_runtime.messaging.UNLIMITED_DELIVERIES`; `max_ack_pending` bounds the
    messages delivered and not yet acked (JetStream delivers no more until some are).
    """
    return ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        max_deliver=max_deliver,
        ack_wait=ack_wait_s,
        filter_subject=filter_subject,
        max_ack_pending=max_ack_pending,
    )


async def fetched(
    subscription: JetStreamContext.PullSubscription, batch: int, timeout_s: float, consumer: str
) -> list[Msg]:
    """Up to `batch` messages, waiting at most `timeout_s`; [] when none came or the fetch failed.

    A failure (NATS gone, the consumer deleted meanwhile) is logged and waited out for
    FETCH_FAILED_PAUSE_S: the caller's loop goes on, and fetches again once NATS is back.
    """
    try:
        return await subscription.fetch(batch, timeout=timeout_s)
    except (NatsTimeoutError, TimeoutError):
        # Nothing arrived within the fetch's wait (nats-py raises either kind).
        return []
    except Exception as error:
        log.warning("messaging.fetch_failed", consumer=consumer, error=repr(error))
        await asyncio.sleep(FETCH_FAILED_PAUSE_S)
        return []
