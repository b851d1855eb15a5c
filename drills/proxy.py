"""A NATS proxy on 127.0.0.1 between the dispatcher and the server that can lose chosen publishes.

The ambiguous outcome the drills need (the start reached Temporal, the dispatcher's record of
having done it never reached NATS) lies between two steps of the dispatcher, too close together to
hit with a signal. The proxy makes it exact: it forwards the NATS client protocol unchanged, except
for publishes to chosen subjects (the dispatcher's saved partition floors), which it drops; the
dispatcher is then killed, and the next owner of its partitions reads those commands again.

Server-to-client traffic is passed through as bytes; client-to-server traffic is
parsed only far enough to find message boundaries (`PUB`/`HPUB` carry a byte count).
When either side closes, both are closed, so a NATS restart reaches the client as a
disconnect and it reconnects through the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from tests.support.loopback import listening_on

log = structlog.get_logger("drills.proxy")


@dataclass
class DropRule:
    """Lose every publish to subjects starting with `prefix` (the server never sees them)."""

    prefix: bytes
    dropped: int = 0


class PublishLosingProxy:
    """Listens on 127.0.0.1, forwards to `upstream` (`host`, `port`); see the module docstring."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.rule: DropRule | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"nats://{listening_on(self._server)}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def drop_publishes(self, prefix: str) -> DropRule:
        """From now on (until `rule` is reset), every publish to a subject starting with `prefix` is lost."""
        self.rule = DropRule(prefix.encode())
        return self.rule

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        pumps: list[asyncio.Task[None]] = []
        try:
            try:
                server_reader, server_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                # NATS is down: refuse, the client's reconnect loop tries again.
                return
            try:
                pumps = [
                    asyncio.create_task(self._pump_raw(server_reader, client_writer)),
                    asyncio.create_task(self._pump_client(client_reader, server_writer)),
                ]
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                server_writer.close()
        except asyncio.CancelledError:
            # close(): end quietly; the server's callback would report a cancelled task as an error.
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            client_writer.close()
            self._connections.discard(task)

    @staticmethod
    async def _pump_raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()

    async def _pump_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            while line := await reader.readuntil(b"\r\n"):
                verb = line[:5].upper()
                if verb.startswith((b"PUB ", b"HPUB ")):
                    parts = line.split()
                    size = int(parts[-1])
                    forwarded = self._filtered(parts[1], await reader.readexactly(size + 2))
                    if forwarded is None:
                        continue
                    writer.write(line + forwarded)
                else:
                    writer.write(line)
                await writer.drain()

    def _filtered(self, subject: bytes, payload: bytes) -> bytes | None:
        """The payload to forward (with its CRLF), or None to drop the whole message."""
        rule = self.rule
        if rule is None or not subject.startswith(rule.prefix):
            return payload
        rule.dropped += 1
        log.info("drills.proxy.publish_lost", subject=subject.decode(errors="replace"))
        return None
