"""Prometheus metrics: the service's own registry plus the Temporal SDK's, served as one `/metrics`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric

_extra_sources: list[tuple[str, int]] = []
SCRAPE_TIMEOUT_S = 2.0

# Shared metric definitions, named once so every service reports them the same way.
commands = Counter("drift_commands_total", "Commands handled by the dispatcher", ["kind", "outcome"])
dispatch_seconds = Histogram(
    "drift_dispatch_seconds", "From a command's arrival in JetStream to Temporal accepting it", ["kind"]
)
run_statuses = Counter("drift_run_status_events_total", "Run status changes seen by the notifier", ["status"])
sync_waiters = Gauge("drift_sync_waiters_active", "Sync HTTP calls waiting for a run's answer")
sync_timeouts = Counter("drift_sync_waiters_timed_out_total", "Sync calls answered 202 at their timeout", ["kind"])
node_seconds = Histogram("drift_node_seconds", "Node execution time by type and outcome", ["type", "outcome"])

OWNERS: dict[str, tuple[MetricWrapperBase, ...]] = {
    "drift-dispatcher": (commands, dispatch_seconds),
    "drift-notifier": (run_statuses,),
    "drift-gateway": (sync_waiters, sync_timeouts),
    "drift-worker": (node_seconds,),
}
"""Which service exposes each shared family: every process imports them all, each serves only its own."""
_service: str | None = None


def serve_as(service: str) -> None:
    """Serve only `service`'s own shared families from now on (the others would be series that never move)."""
    global _service
    _service = service


def _foreign_names() -> set[str]:
    if _service is None:
        return set()
    return {
        family.name
        for owner, collectors in OWNERS.items()
        if owner != _service
        for collector in collectors
        for family in collector.describe()
    }


class _OwnFamilies:
    """The default registry without the shared families another service owns."""

    def collect(self) -> Iterator[Metric]:
        foreign = _foreign_names()
        for family in REGISTRY.collect():
            if family.name not in foreign:
                yield family


def free_local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def add_scrape_source(host: str, port: int) -> None:
    """Also serve what a local Prometheus endpoint (the Temporal SDK's) exposes."""
    _extra_sources.append((host, port))


async def _scrape(host: str, port: int) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), SCRAPE_TIMEOUT_S)
    try:
        writer.write(f"GET /metrics HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), SCRAPE_TIMEOUT_S)
    finally:
        writer.close()
    _, _, body = response.partition(b"\r\n\r\n")
    return body


async def render() -> bytes:
    """The Prometheus text of this process: own registry first, then every extra source."""
    parts = [generate_latest(_OwnFamilies())]  # type: ignore[arg-type]
    for host, port in _extra_sources:
        try:
            parts.append(await _scrape(host, port))
        except (OSError, TimeoutError):
            continue
    return b"\n".join(parts)
