"""Webhook receivers for the notifier's tests: small asyncio servers on 127.0.0.1 that misbehave on purpose."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from support.loopback import HttpRequest, holds_within, listening_on, read_request


@dataclass
class Stub:
    """A server whose requests and connection ends tests can await; subclasses write the answers."""

    server: asyncio.Server | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    requests: list[HttpRequest] = field(default_factory=list)
    lifetimes: list[float] = field(default_factory=list)
    """How long each connection lasted, for those that ended."""
    sent: list[int] = field(default_factory=list)
    """Body bytes written on each answered connection before it ended."""
    open_now: int = 0
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{listening_on(self.server)}/hooks"

    async def __aenter__(self) -> Stub:
        self.server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()

    async def wait_until(self, done: object, timeout: float) -> bool:
        assert callable(done)
        return await holds_within(self.changed, done, timeout)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        began = time.monotonic()
        self.writers.add(writer)
        self.open_now += 1
        try:
            while True:
                request = await read_request(reader)
                self.requests.append(request)
                await self._notify()
                await self.answer(request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self.open_now -= 1
            self.lifetimes.append(time.monotonic() - began)
            self.writers.discard(writer)
            writer.close()
            await self._notify()

    async def answer(self, request: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


@dataclass
class Trickle(Stub):
    """A status line, then a header line every `interval_s`, never the end of the headers."""

    interval_s: float = 0.2

    async def answer(self, request: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:
            await writer.drain()
            if reader.at_eof():
                raise ConnectionError("the client closed")
            await asyncio.sleep(self.interval_s)
            writer.write(b"X-Still-Coming: 1\r\n")


@dataclass
class Flood(Stub):
    """Answers `status` with a body of `size` bytes, as fast as the client takes it."""

    status: int = 200
    size: int = 128 * 1024 * 1024

    async def answer(self, request: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (
            f"HTTP/1.1 {self.status} X\r\nContent-Type: application/octet-stream\r\nContent-Length: {self.size}\r\n\r\n"
        )
        writer.write(head.encode())
        chunk, sent = bytes(256 * 1024), 0
        try:
            while sent < self.size:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        finally:
            self.sent.append(sent)


@dataclass
class SlowBody(Stub):
    """Answers 200 at once, then a 1,000-byte body one byte every `interval_s`."""

    interval_s: float = 0.1

    async def answer(self, request: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            await writer.drain()
            await asyncio.sleep(self.interval_s)
            writer.write(b"x")


@dataclass
class Gate(Stub):
    """Holds every answer until `opened` is set, then answers `status` with an empty body."""

    status: int = 200
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def answer(self, request: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.opened.wait()
        writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
