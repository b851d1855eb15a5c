"""A tiny HTTP endpoint for the non-HTTP services: `/health/live`, `/health/ready`, `/metrics`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from drift_runtime.metrics import render

log = structlog.get_logger("drift.health")

ReadinessProbe = Callable[[], Awaitable[bool]]


async def serve_health(port: int, ready: ReadinessProbe, host: str = "127.0.0.1") -> asyncio.Server:
    """Serve health and Prometheus metrics on a small port of the service's own."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else "/"
            status, content_type, body = await _route(path, ready)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


async def _route(path: str, ready: ReadinessProbe) -> tuple[str, str, bytes]:
    if path == "/health/live":
        return "200 OK", "application/json", b'{"status":"ok"}'
    if path == "/health/ready":
        try:
            is_ready = await asyncio.wait_for(ready(), timeout=3)
        except Exception:
            is_ready = False
        if is_ready:
            return "200 OK", "application/json", b'{"status":"ready"}'
        return "503 Service Unavailable", "application/json", b'{"status":"not ready"}'
    if path == "/metrics":
        return "200 OK", CONTENT_TYPE_LATEST, await render()
    return "404 Not Found", "application/json", b'{"status":"not found"}'
