"""A NATS proxy on 127.0.0.1 between the dispatcher and the server that can lose chosen acknowledgements.

The ambiguous outcome the drills need (the start reached Temporal, its ack never
reached JetStream) lies between two lines of the dispatcher, too close together to
hit with a signal. The proxy makes it exact: it forwards the NATS client protocol
unchanged, except for the `+ACK` of a chosen stream sequence, which it drops (a lost
ack: JetStream redelivers after the consumer's ack wait) or turns into `-NAK` (the
same redelivery, at once: for the smoke set).

Server-to-client traffic is passed through as bytes; client-to-server traffic is
parsed only far enough to find message boundaries (`PUB`/`HPUB` carry a byte count).
When either side closes, both are closed, so a NATS restart reaches the client as a
disconnect and it reconnects through the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("drills.proxy")

ACK = b"+ACK"
NAK = b"-NAK"
NAK_MESSAGE = NAK + b"\r\n"


@dataclass
class AckRule:
    """What to do with the first `+ACK` of a stream sequence on one stream's consumer."""

    stream: str
    consumer: str
    nak: bool
    """True: turn the ack into `-NAK` (redelivery now); False: drop it (redelivery after ack wait)."""
    pending: set[int] = field(default_factory=set)
    lost: list[int] = field(default_factory=list)


def _ack_target(subject: bytes) -> tuple[str, str, int] | None:
    """(stream, consumer, stream sequence) of a `$JS.ACK` reply subject, either token layout."""
    if not subject.startswith(b"$JS.ACK."):
        return None
    tokens = subject.decode().split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
        stream, consumer, sseq = tokens[2], tokens[3], tokens[5]
    elif len(tokens) >= 11:  # $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>...
        stream, consumer, sseq = tokens[4], tokens[5], tokens[7]
    else:
        return None
    return stream, consumer, int(sseq)


class AckLosingProxy:
    """Listens on 127.0.0.1, forwards to `upstream` (`host`, `port`); see the module docstring."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.rule: AckRule | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"nats://{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def lose_first_acks(self, stream: str, consumer: str, sequences: set[int], *, nak: bool) -> AckRule:
        """From now on, the first ack of each of `sequences` is lost (or turned into a NAK)."""
        self.rule = AckRule(stream, consumer, nak, set(sequences))
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
                    if forwarded is NAK_MESSAGE:
                        # An ack has no reply subject and no headers (nats-py sends PUB with 0 bytes).
                        line = b"PUB " + parts[1] + b" " + str(len(NAK)).encode() + b"\r\n"
                    writer.write(line + forwarded)
                else:
                    writer.write(line)
                await writer.drain()

    def _filtered(self, subject: bytes, payload: bytes) -> bytes | None:
        """The payload to forward (with its CRLF), or None to drop the whole message."""
        rule = self.rule
        # An empty payload is an ack too: it is what nats-py's `Msg.ack()` sends.
        if rule is None or not rule.pending or payload[:-2] not in (ACK, b""):
            return payload
        target = _ack_target(subject)
        if target is None or target[:2] != (rule.stream, rule.consumer) or target[2] not in rule.pending:
            return payload
        rule.pending.discard(target[2])
        rule.lost.append(target[2])
        log.info("drills.proxy.ack_lost", stream_seq=target[2], nak=rule.nak)
        return NAK_MESSAGE if rule.nak else None
