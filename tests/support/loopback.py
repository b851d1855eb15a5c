"""A minimal HTTP/1.1 server on 127.0.0.1 for test doubles (webhook receivers, stub APIs, OTLP).

Subclasses implement `respond()`; the base parses requests, keeps connections
alive when asked, and lets tests await what arrived without sleeping.

The drills (`python -m drills`, run from the repository root) import this module
as `tests.support.loopback`; tests import it as `support.loopback`. It depends on
nothing outside the standard library.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Self


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON; None for an empty body."""
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


async def read_request(reader: asyncio.StreamReader) -> HttpRequest:
    """One HTTP/1.1 request with a Content-Length body, its target as sent; ConnectionError if the client closed."""
    request_line = await reader.readline()
    if not request_line:
        raise ConnectionError("closed before a request")
    method, target, _ = request_line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return HttpRequest(method, target, headers, body)


def listening_on(server: asyncio.Server | None) -> str:
    """`host:port` that a started server listens on (its first socket)."""
    assert server is not None, "the server has not started"
    host, port = server.sockets[0].getsockname()[:2]
    return f"{host}:{port}"


async def holds_within(changed: asyncio.Condition, done: Callable[[], bool], timeout: float) -> bool:
    """Wait until `done()` holds, checked whenever `changed` is notified; whether it holds at the timeout."""
    try:
        async with changed:
            await asyncio.wait_for(changed.wait_for(done), timeout)
    except TimeoutError:
        return done()
    return True


@dataclass
class LoopbackServer:
    server: asyncio.Server | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    wait_for_clients: ClassVar[bool] = True
    """Whether `close()` waits for open connections to end (Python 3.12+ waits for idle keep-alive ones too)."""

    @property
    def url(self) -> str:
        return f"http://{listening_on(self.server)}"

    async def start(self) -> LoopbackServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            if self.wait_for_clients:
                await self.server.wait_closed()

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        """Answer one request; called with every request, in arrival order per connection."""
        raise NotImplementedError

    async def notify(self) -> None:
        """Wake the tests waiting in `wait_until`."""
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, done: Callable[[], bool], timeout: float = 30) -> None:
        """Wait until `done()` holds (checked after every request), or fail (TimeoutError) at the timeout."""
        if not await holds_within(self._changed, done, timeout):
            raise TimeoutError(f"not reached within {timeout:g}s")

    async def holds_within(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until `done()` holds (checked after every request); False at the timeout."""
        return await holds_within(self._changed, done, timeout)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                # Routes match the path alone; the query string stays out of `respond`'s way.
                answer = await self.respond(replace(request, path=request.path.split("?", 1)[0]))
                keep_alive = request.headers.get("connection", "").lower() != "close"
                extra = "".join(f"\r\n{name}: {value}" for name, value in answer.headers.items())
                writer.write(
                    f"HTTP/1.1 {answer.status} X\r\nContent-Type: {answer.content_type}\r\n"
                    f"Content-Length: {len(answer.body)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}"
                    f"{extra}\r\n\r\n".encode()
                    + answer.body
                )
                await writer.drain()
                await self.notify()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            # Clients keep connections open; closing the server cancels their idle reads.
            return
        finally:
            writer.close()
