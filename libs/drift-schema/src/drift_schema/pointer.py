"""JSON pointer tokens (RFC 6901): how every fault's `pointer` names a key that holds `/` or `~`."""

from __future__ import annotations


def escape(token: str) -> str:
    """A key or index as one pointer token: `~` becomes `~0`, `/` becomes `~1`."""
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    """The key a pointer token names (the inverse of `escape`)."""
    return token.replace("~1", "/").replace("~0", "~")
