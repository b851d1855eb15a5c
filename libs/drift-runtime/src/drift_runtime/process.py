"""Running a background service process until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import Any

import structlog

from drift_runtime import metrics
from drift_runtime.logging import configure_logging
from drift_runtime.messaging import Stopped
from drift_runtime.telemetry import setup_tracing, shutdown_tracing


def freeze_start_up() -> None:
    """Keep what exists now out of the garbage collector's passes; call once a service has started.

    Start-up objects (modules, clients, caches, the app) live as long as the process. Frozen, a full
    collection no longer walks them: one that did paused a service's requests or commands for 100+ ms.
    Only in a service's own process: an in-process test's objects are left alone.
    """
    gc.collect()
    gc.freeze()


def run_until_signalled(
    service: str, log_format: str, log_level: str, run: Callable[[asyncio.Event], Awaitable[None]]
) -> None:
    """Set up logs and tracing for `service`, then run `run(stop)`; a signal sets `stop`."""
    configure_logging(service, log_format, log_level)
    setup_tracing(service)
    metrics.serve_as(service)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await run(stop)
        except Stopped:
            # Asked to stop before a dependency was reachable: nothing was started, nothing to drain.
            structlog.get_logger("drift.process").info("process.stopped_during_startup", service=service)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
    shutdown_tracing()


@contextlib.contextmanager
def stop_on_signal() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs, for waits a server's own handling cannot end.

    uvicorn only notes a signal and acts once its lifespan start-up returns; a start-up that waits for a
    dependency uses this event to give up at once. The handlers in place before are still called and are
    restored afterwards, so the server's own shutdown proceeds as usual.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)

    if threading.current_thread() is not threading.main_thread():
        # Signals reach the main thread only (an app run by a test client in a thread): nothing to hear.
        yield stop
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handle)
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
