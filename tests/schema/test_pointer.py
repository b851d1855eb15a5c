"""JSON pointer tokens: one escaping for every fault's pointer."""

from __future__ import annotations

import pytest

from drift_schema.pointer import escape, unescape


@pytest.mark.parametrize(
    ("key", "token"),
    [("plain", "plain"), ("a/b", "a~1b"), ("m~n", "m~0n"), ("~1", "~01"), ("/~/", "~1~0~1"), ("", "")],
)
def test_a_key_escapes_to_its_token_and_back(key: str, token: str) -> None:
    """`~` becomes `~0` before `/` becomes `~1` (RFC 6901), and unescape gives the key back."""
    assert escape(key) == token
    assert unescape(token) == key
