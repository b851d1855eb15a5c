"""The shared consume loop on an idle stream: an empty fetch is not a fault, so nothing is logged."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import structlog
from structlog.testing import capture_logs

from drift_cli.servers import InfraStack
from drift_runtime import messaging
from drift_schema import subjects

pytestmark = pytest.mark.asyncio(loop_scope="session")

FETCH_TIMEOUT_S = 0.002
"""So short that the fetch's own deadline runs out after its first probe: nats-py then raises asyncio's bare
TimeoutError (not its own), as a busy host makes it do with the default timeout."""
IDLE_S = 1.0


async def test_idle_consumer_logs_no_fetch_failures(infra: InfraStack) -> None:
    """Fetches that find nothing (nats-py's TimeoutError, or asyncio's bare one from inside fetch) log nothing."""
    nc = await messaging.connect(infra.nats_url, "idle-test")
    try:
        js = nc.jetstream()
        await messaging.ensure_streams(js)
        spec = messaging.ConsumerSpec(
            stream=subjects.EVENT_STREAM,
            durable=f"idle-{uuid.uuid4().hex[:8]}",
            filter_subject=f"drift.idle{uuid.uuid4().hex[:8]}.evt.>",
            fetch_timeout_s=FETCH_TIMEOUT_S,
        )
        handled: list[object] = []

        async def handler(msg: object) -> None:
            handled.append(msg)

        stop = asyncio.Event()
        structlog.reset_defaults()
        with capture_logs() as logs:
            consuming = asyncio.create_task(messaging.consume(js, spec, handler, stop, name="idle-test"))
            # Nothing to await: the behaviour is that idle time passes quietly.
            await asyncio.sleep(IDLE_S)
            stop.set()
            await asyncio.wait_for(consuming, 5)
        assert handled == []
        assert [entry for entry in logs if entry["log_level"] in {"warning", "error"}] == []
        await js.delete_consumer(subjects.EVENT_STREAM, spec.durable)
    finally:
        await nc.close()
