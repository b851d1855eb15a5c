"""Polling with a deadline, for what no event announces (a listing catching up, a schedule firing)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


async def until(
    check: Callable[[], Awaitable[Any]], within: float, *, every: float = 0.1, failure: str = "not within"
) -> Any:
    """Poll `check` every `every` seconds until it answers something truthy, and answer that; fail after `within`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"{failure} {within} s: last answer {result!r}")
        await asyncio.sleep(every)
