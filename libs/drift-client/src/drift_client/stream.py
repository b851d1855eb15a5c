"""Reading a JetStream subject from its start: what a client needs of NATS, without the services' runtime."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

__all__ = ["REPLAY_IDLE_S", "replay"]

REPLAY_IDLE_S = 1.0


async def replay(js: JetStreamContext, subject: str, stream: str, *, follow: bool = False) -> AsyncIterator[Msg]:
    """The stored messages of `subject` in stream order; with `follow`, then every new one.

    Without `follow` it stops once caught up (or after a second without messages).
    """
    try:
        subscription = await js.subscribe(
            subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
    except NotFoundError:
        return
    try:
        while True:
            try:
                msg = await subscription.next_msg(timeout=REPLAY_IDLE_S)
            except NatsTimeoutError:
                if follow:
                    continue
                return
            yield msg
            if not follow and msg.metadata.num_pending == 0:
                return
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
