"""One sync call is one trace across the gateway, dispatcher, worker and notifier (OTLP to a local receiver)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from drift_cli.bundles import find_bundles, load_bundle_files
from drift_cli.config import DevConfig, DevSecrets, generate_webhook_secret
from drift_cli.platform import Platform
from drift_cli.servers import InfraStack, free_port
from e2e.otlp import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.asyncio(loop_scope="session")

EXAMPLES = Path(__file__).parents[2] / "examples"
SERVICES = {"drift-gateway", "drift-dispatcher", "drift-worker", "drift-notifier"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def traced(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Platform, OtlpReceiver]]:
    """A platform of its own (its own servers) exporting traces to an in-process OTLP receiver."""
    receiver = await OtlpReceiver().start()
    patch = pytest.MonkeyPatch()
    patch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    patch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    home = tmp_path_factory.mktemp("traced-home")
    infra = InfraStack(home / "infra")
    await infra.start()
    config = DevConfig(home=home, gateway_port=free_port(), dsl_store_port=free_port(), log_format="json")
    secrets = DevSecrets(
        api_keys={"key-t": "tracing"},
        dev_api_key="key-t",
        service_token="svc",
        webhook_secret=generate_webhook_secret(),
    )
    try:
        async with Platform(config, secrets, infra=infra) as platform:
            (await load_bundle_files(platform.dsl_store_url, "key-t", find_bundles(EXAMPLES))).raise_for_errors()
            yield platform, receiver
    finally:
        patch.undo()
        infra.stop()
        await receiver.close()


def _trace_of(spans: list[ReceivedSpan], root: ReceivedSpan) -> list[ReceivedSpan]:
    return [span for span in spans if span.trace_id == root.trace_id]


def _ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    chain = []
    while span.parent_id and span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


async def test_sync_start_is_one_trace_through_every_service(traced: tuple[Platform, OtlpReceiver]) -> None:
    """The start's spans share one trace rooted at the gateway's request, reaching dispatcher, worker and notifier."""
    platform, receiver = traced
    workflow_id = f"tr-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=platform.gateway_url, headers={"Authorization": "Bearer key-t"}) as http:
        started = await http.post(
            "/v3/workflow/start",
            json={"workflow": {"id": "hello_approval"}, "workflowId": workflow_id, "params": {"name": "T"}},
            timeout=60,
        )
    assert started.json()["workflowStatus"] == "WAITING"

    def complete(spans: list[ReceivedSpan]) -> bool:
        # Spans arrive in batches from four processes: wait until the trace has every service
        # and no span still waits for its parent to arrive.
        roots = [s for s in spans if s.service == "drift-gateway" and not s.parent_id and "start" in s.name]
        if not roots:
            return False
        trace = _trace_of(spans, roots[-1])
        ids = {span.span_id for span in trace}
        return {s.service for s in trace} >= SERVICES and all(not s.parent_id or s.parent_id in ids for s in trace)

    await receiver.wait_until(lambda: complete(receiver.spans))
    root = [s for s in receiver.spans if s.service == "drift-gateway" and not s.parent_id and "start" in s.name][-1]
    trace = _trace_of(receiver.spans, root)
    by_id = {span.span_id: span for span in trace}
    # Every span of the trace hangs from the gateway's request span: no orphans, no second root.
    assert [s for s in trace if not s.parent_id] == [root]
    assert all(root in _ancestors(span, by_id) for span in trace if span is not root)
    notified = [s for s in trace if s.service == "drift-notifier"]
    chain_services = {s.service for s in _ancestors(notified[0], by_id)}
    assert {"drift-worker", "drift-dispatcher", "drift-gateway"} <= chain_services
