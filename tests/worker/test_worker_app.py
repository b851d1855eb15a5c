"""The worker process honours DRIFT_STREAM_REPLICAS and binds its health server on DRIFT_BIND_HOST."""

from __future__ import annotations

import httpx
import pytest
from nats.aio.client import Client as NatsClient

from drift_worker.app import start_health
from drift_worker.config import Settings
from worker.worker_support import worker_settings


def test_stream_replicas_and_bind_host_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """DRIFT_STREAM_REPLICAS and DRIFT_BIND_HOST reach the settings; unset they are 1 and 127.0.0.1."""
    monkeypatch.delenv("DRIFT_STREAM_REPLICAS", raising=False)
    monkeypatch.delenv("DRIFT_BIND_HOST", raising=False)
    defaults = Settings.from_env()
    assert (defaults.stream_replicas, defaults.bind_host) == (1, "127.0.0.1")
    monkeypatch.setenv("DRIFT_STREAM_REPLICAS", "3")
    monkeypatch.setenv("DRIFT_BIND_HOST", "0.0.0.0")
    configured = Settings.from_env()
    assert (configured.stream_replicas, configured.bind_host) == (3, "0.0.0.0")


async def test_health_server_listens_on_the_bind_host(nats_client: NatsClient) -> None:
    """The health server listens on the configured address (here 127.0.0.2), not on 127.0.0.1, and is ready."""
    health = await start_health(worker_settings("unused", bind_host="127.0.0.2", metrics_port=0), nats_client)
    try:
        [address] = {sock.getsockname()[:2] for sock in health.sockets}
        assert address[0] == "127.0.0.2"
        port = address[1]
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(f"http://127.0.0.2:{port}/health/ready")).status_code == 200
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/health/live")
    finally:
        health.close()
        await health.wait_closed()
