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


FLOWING_WAIT_S = 0.05
"""How long a batch fetch waits while messages flow; past it the consumer counts as idle again (see Fetcher)."""


class Fetcher:
    """Pulls from one subscription: one message at a time while it is idle, in short batch fetches while they flow.

    nats-py's batch fetch returns only once its batch is full, its time is up, or the server ends a
    pull request with a status. A pull request the client gave up on (its fetch timed out a moment
    before the server's expiry, an idle race every fetch cycle) stays open on the server, and takes
    the next message. The fetch waiting then gets that message, and goes on waiting for a status
    that its own request sends only at its expiry: the message was held up to the fetch's timeout,
    a second (sync starts of 0.3 to 0.9 s under load, from commands the dispatcher read late).

    So an idle consumer fetches one message at a time: such a fetch returns with its first message,
    from whichever request it came. Once messages flow, a burst is read in batches, each waiting at
    most FLOWING_WAIT_S, which bounds what that race can cost to that; a batch fetch that finds
    nothing makes the consumer idle again.
    """

    def __init__(self, subscription: JetStreamContext.PullSubscription, timeout_s: float) -> None:
        """`timeout_s`: how long an idle fetch waits (the caller's loop turns this often when nothing comes)."""
        self.subscription = subscription
        self.timeout_s = timeout_s
        self._flowing = False

    async def fetch(self, batch: int) -> list[Msg]:
        """Up to `batch` messages; [] when none came in time (other failures raise)."""
        try:
            if self._flowing:
                messages = await self.subscription.fetch(batch, timeout=min(self.timeout_s, FLOWING_WAIT_S))
            else:
                messages = await self.subscription.fetch(1, timeout=self.timeout_s)
        except (NatsTimeoutError, TimeoutError):
            # Nothing arrived within the fetch's wait (nats-py raises either kind).
            self._flowing = False
            return []
        self._flowing = bool(messages)
        return messages


async def fetched(fetcher: Fetcher, batch: int, consumer: str) -> list[Msg]:
    """Up to `batch` messages (see Fetcher); [] when none came or the fetch failed.

    A failure (NATS gone, the consumer deleted meanwhile) is logged and waited out for
    FETCH_FAILED_PAUSE_S: the caller's loop goes on, and fetches again once NATS is back.
    """
    try:
        return await fetcher.fetch(batch)
    except Exception as error:
        log.warning("messaging.fetch_failed", consumer=consumer, error=repr(error))
        await asyncio.sleep(FETCH_FAILED_PAUSE_S)
        return []
