"""The worker process honours DRIFT_STREAM_REPLICAS, binds its health server on DRIFT_BIND_HOST, bounds its cache."""

from __future__ import annotations

import uuid

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from temporalio.client import Client

from drift_worker.app import build_worker, start_health
from drift_worker.config import MAX_CACHED_RUNS, MAX_WORKFLOW_TASKS, Settings
from drift_worker.evaluator import EvaluatorPool
from drift_worker.ssrf import Guard, guarded_client
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


def test_cache_and_workflow_task_bounds_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """DRIFT_WORKER_MAX_CACHED_RUNS and DRIFT_WORKER_MAX_WORKFLOW_TASKS reach the settings; unset, the defaults."""
    monkeypatch.delenv("DRIFT_WORKER_MAX_CACHED_RUNS", raising=False)
    monkeypatch.delenv("DRIFT_WORKER_MAX_WORKFLOW_TASKS", raising=False)
    defaults = Settings.from_env()
    assert (defaults.max_cached_runs, defaults.max_workflow_tasks) == (MAX_CACHED_RUNS, MAX_WORKFLOW_TASKS)
    monkeypatch.setenv("DRIFT_WORKER_MAX_CACHED_RUNS", "200")
    monkeypatch.setenv("DRIFT_WORKER_MAX_WORKFLOW_TASKS", "50")
    configured = Settings.from_env()
    assert (configured.max_cached_runs, configured.max_workflow_tasks) == (200, 50)


@pytest.mark.parametrize(("cached", "tasks", "cache"), [(200, 100, 200), (8, 16, 16)])
async def test_the_sticky_cache_is_bounded_and_never_below_the_tasks_in_hand(
    temporal_client: Client, nats_client: NatsClient, cached: int, tasks: int, cache: int
) -> None:
    """The worker caches `max_cached_runs` runs (not Temporal's 1,000), and at least as many as its workflow tasks."""
    settings = worker_settings(f"cache-{uuid.uuid4().hex}", max_cached_runs=cached, max_workflow_tasks=tasks)
    pool = EvaluatorPool(settings.evaluator_pool)
    try:
        async with guarded_client(Guard(settings.http_allow_hosts)) as http:
            config = build_worker(temporal_client, nats_client.jetstream(), http, settings, [], pool=pool).config()
        assert (config.get("max_cached_workflows"), config.get("max_concurrent_workflow_tasks")) == (cache, tasks)
    finally:
        await pool.close()
