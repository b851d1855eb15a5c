"""`async with` for the things that start and stop a set of processes (the dev platform, its infra,
the benchmark and drill stacks): entering starts them, leaving stops them, whatever happened."""

from __future__ import annotations

from typing import Self


class Started:
    """Entered with `await start()`, left with `stop()`; a subclass defines both."""

    async def start(self) -> None:
        """Start everything; raise if it does not come up."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop everything (idempotent)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()


class AsyncStarted:
    """Entered with `await start()`, left with `await stop()`; a subclass defines both."""

    async def start(self) -> None:
        """Start everything; raise if it does not come up."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop everything (idempotent)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
