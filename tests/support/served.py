"""Serve an ASGI app (a Drift service built in-process) with uvicorn on a free loopback port.

Unlike Litestar's test client, requests travel over real HTTP and run concurrently, and the
app's lifespan runs as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """Run `app` (lifespan on) on 127.0.0.1 until the block ends; yields its base URL."""
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", log_config=None, access_log=False)
    async with serving_on(config, sock):
        yield f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def serving_on(config: uvicorn.Config, sock: socket.socket) -> AsyncIterator[None]:
    """Run uvicorn with `config` on the bound `sock` until the block ends; closes the socket after."""
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    # startup() returns once the lifespan (if on) has run and the socket listens: no polling for readiness.
    await server.startup(sockets=[sock])
    loop = asyncio.create_task(server.main_loop())
    try:
        yield
    finally:
        server.should_exit = True
        await loop
        await server.shutdown(sockets=[sock])
        sock.close()
