"""Every metric the shipped dashboards and alert rules query exists on the service that exposes it."""

from __future__ import annotations

import uuid

import httpx
import pytest
from support.monitoring import families, selectors

from drift_cli.platform import Platform
from drift_client import DriftClient

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _platform_name(job: str) -> str:
    # Scrape jobs are named after the services; the test platform runs one worker, `worker-1`.
    name = job.removeprefix("drift-")
    return "worker-1" if name == "worker" else name


async def _scrape(platform: Platform) -> dict[str, set[str]]:
    pages: dict[str, set[str]] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for service in platform.services:
            base = service.ready_url.removesuffix("/health/ready")
            answer = await http.get(f"{base}/metrics")
            assert answer.status_code == 200, service.name
            pages[service.name] = families(answer.text)
    return pages


async def test_dashboards_and_rules_query_metrics_their_services_expose(platform: Platform) -> None:
    """After one run started and resumed, each queried family is on each service its `job` matcher selects."""
    async with DriftClient(platform.gateway_url, "key-acme") as client:
        workflow_id = f"dash-{uuid.uuid4().hex[:10]}"
        await client.start("hello_approval", workflow_id=workflow_id, params={"name": "Dee"})
        await client.resume(workflow_id, {"decision": "APPROVE"})
    pages = await _scrape(platform)
    missing = [
        f"{selector.source}: {selector.metric} not on {job}"
        for selector in selectors()
        for job in selector.jobs
        if selector.metric not in pages[_platform_name(job)]
    ]
    assert not missing, "\n".join(missing)


async def test_each_service_exposes_only_its_own_families(platform: Platform) -> None:
    """Shared families only on their owner, HTTP metrics on the HTTP services only, SDK metrics in seconds."""
    async with httpx.AsyncClient(timeout=10) as http:
        # A page of the Studio, so its request counter has a series to show.
        assert (await http.get(f"{platform.studio_url}/")).status_code == 200
    pages = await _scrape(platform)
    owners = {
        "drift_commands_total": "dispatcher",
        "drift_dispatch_seconds": "dispatcher",
        "drift_run_status_events_total": "notifier",
        "drift_sync_waiters_active": "gateway",
        "drift_sync_waiters_timed_out_total": "gateway",
        "drift_node_seconds": "worker-1",
    }
    for family, owner in owners.items():
        assert [name for name, page in pages.items() if family in page] == [owner], family
    http = {name for name, page in pages.items() if "drift_http_requests_total" in page}
    assert {"gateway", "dsl-store", "studio"} <= http and not http & {"dispatcher", "worker-1", "notifier"}
    for name in ("dispatcher", "worker-1", "gateway"):
        sdk = {family for family in pages[name] if family.startswith("temporal_")}
        assert "temporal_request_total" in sdk, name
        # Prometheus' conventions: counters end in _total, durations are seconds.
        assert not {f for f in sdk if f.endswith("_latency") or f.endswith("_latency_bucket")}, sdk
    assert not {f for f in pages["dsl-store"] if f.startswith("temporal_")}
