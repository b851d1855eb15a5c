"""Running a background service process until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

from drift_runtime.logging import configure_logging
from drift_runtime.telemetry import setup_tracing, shutdown_tracing


def run_until_signalled(
    service: str, log_format: str, log_level: str, run: Callable[[asyncio.Event], Awaitable[None]]
) -> None:
    """Set up logs and tracing for `service`, then run `run(stop)`; a signal sets `stop`."""
    configure_logging(service, log_format, log_level)
    setup_tracing(service)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
    shutdown_tracing()
