"""The shape of a durable JetStream pull consumer that acknowledges each message itself.

The notifier's webhook consumer and the dispatcher's progress consumer are such consumers; they
differ only in what they read, how often a message may come back, and how many may be unacked.
"""

from __future__ import annotations

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


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
