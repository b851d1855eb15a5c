"""What a client needs of NATS, without the services' runtime: a server URL's credentials, and a subject's history.

NATS credentials travel in the URL's user information (`nats://drift:<password>@host:4222`, or
`nats://<token>@host:4222`); nats-py wants them apart, and percent-decoded.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

__all__ = ["REPLAY_IDLE_S", "NatsServer", "redact_url", "replay", "split_credentials"]

REPLAY_IDLE_S = 1.0


class NatsServer(NamedTuple):
    """A NATS URL taken apart: the server without user information, and the credentials it carried."""

    url: str
    user: str | None = None
    password: str | None = None
    token: str | None = None


def split_credentials(url: str) -> NatsServer:
    """`url` without its user information, and that information as nats-py's `user`/`password` (or `token`).

    `nats://user:password@host:port` carries a user, `nats://token@host:port` a token; both are
    percent-decoded (nats-py would send them as written), so a password may hold any character.
    """
    parts = urlsplit(url)
    if parts.username is None:
        return NatsServer(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if parts.password is None:
        return NatsServer(bare, token=unquote(parts.username))
    return NatsServer(bare, user=unquote(parts.username), password=unquote(parts.password))


def redact_url(url: str) -> str:
    """`url` fit for a log line or a message: a password (or token) becomes `***`, the user stays."""
    parts = urlsplit(url)
    if parts.username is None:
        return url
    user = "***" if parts.password is None else f"{parts.username}:***"
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.rpartition('@')[2]}"))


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
