"""One sync call is one trace across the gateway, dispatcher, worker and notifier (OTLP to a local receiver)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest
import pytest_asyncio
from support.starts import hello, start_body

from drift_cli.bundles import find_bundles, load_bundle_files
from drift_cli.config import DevConfig, DevSecrets, generate_webhook_secret
from drift_cli.platform import Platform
from drift_cli.servers import InfraStack, free_port
from e2e.otlp import OtlpReceiver, ReceivedSpan
from e2e.receiver import Receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")

EXAMPLES = Path(__file__).parents[2] / "examples"
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5
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


def _roots(spans: list[ReceivedSpan], route: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.service == "drift-gateway" and not s.parent_id and route in s.name]


async def _assert_one_trace(receiver: OtlpReceiver, route: str, before: int) -> None:
    """The newest gateway request span of `route` (received after `before`) roots one trace over the services."""

    def complete() -> bool:
        # Spans arrive in batches from four processes: wait until the trace has every service
        # and no span still waits for its parent to arrive.
        roots = _roots(receiver.spans[before:], route)
        if not roots:
            return False
        trace = _trace_of(receiver.spans, roots[-1])
        ids = {span.span_id for span in trace}
        # The notifier exports its Redis announcement in a batch of its own at times: wait for it too.
        announced = any(
            s.service == "drift-notifier" and s.kind == PRODUCER and s.name.startswith("drift:") for s in trace
        )
        return (
            announced
            and {s.service for s in trace} >= SERVICES
            and all(not s.parent_id or s.parent_id in ids for s in trace)
        )

    await receiver.wait_until(complete, timeout=90)
    root = _roots(receiver.spans[before:], route)[-1]
    trace = _trace_of(receiver.spans, root)
    by_id = {span.span_id: span for span in trace}
    # Every span of the trace hangs from the gateway's request span: no orphans, no second root.
    assert [s for s in trace if not s.parent_id] == [root]
    assert all(root in _ancestors(span, by_id) for span in trace if span is not root)
    notified = [s for s in trace if s.service == "drift-notifier"]
    chain_services = {s.service for s in _ancestors(notified[-1], by_id)}
    assert {"drift-worker", "drift-dispatcher", "drift-gateway"} <= chain_services
    # The Redis hop back: the notifier's announcement and the gateway's wait for it.
    assert any(s.service == "drift-notifier" and s.kind == PRODUCER and s.name.startswith("drift:") for s in trace)
    waits = [s for s in trace if s.service == "drift-gateway" and s.kind == CONSUMER and s.name.endswith("receive")]
    assert waits and waits[0].parent_id == root.span_id


async def test_sync_start_and_resume_are_each_one_trace_through_every_service(
    traced: tuple[Platform, OtlpReceiver],
) -> None:
    """A sync start, then its resume: each is one trace rooted at the gateway's request, reaching all four services."""
    platform, receiver = traced
    workflow_id = f"tr-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=platform.gateway_url, headers={"Authorization": "Bearer key-t"}) as http:
        before = len(receiver.spans)
        started = await http.post(
            "/v3/workflow/start",
            json=hello(workflow_id, "T"),
            timeout=60,
        )
        assert started.json()["workflowStatus"] == "WAITING"
        await _assert_one_trace(receiver, "start", before)

        before = len(receiver.spans)
        resumed = await http.put(
            f"/v3/workflow/resume/{workflow_id}",
            json={"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}},
            timeout=60,
        )
        assert resumed.json()["workflowStatus"] == "COMPLETED"
        await _assert_one_trace(receiver, "resume", before)
        start_roots = _roots(receiver.spans, "start")
        resume_roots = _roots(receiver.spans[before:], "resume")
        assert start_roots[-1].trace_id != resume_roots[-1].trace_id, "the resume is a trace of its own"


async def test_a_run_started_over_nats_continues_the_publishers_trace(
    traced: tuple[Platform, OtlpReceiver],
) -> None:
    """A start published with a `traceparent` header: the dispatcher, worker and notifier spans join that trace."""
    platform, receiver = traced
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    workflow_id = f"trn-{uuid.uuid4().hex[:10]}"
    connection = await nats.connect(platform.infra.nats_url)
    try:
        await connection.jetstream().publish(
            "drift.tracing.cmd.start",
            json.dumps({"workflow": {"id": "hello_approval"}, "workflowId": workflow_id}).encode(),
            headers={"Nats-Msg-Id": uuid.uuid4().hex, "traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
    finally:
        await connection.close()

    def joined() -> bool:
        return {s.service for s in receiver.spans if s.trace_id == trace_id} >= SERVICES - {"drift-gateway"}

    await receiver.wait_until(joined, timeout=90)
    consumed = [s for s in receiver.spans if s.trace_id == trace_id and s.service == "drift-dispatcher"]
    assert parent_id in {s.parent_id for s in consumed}, "the dispatcher's consume span is the publisher's child"


async def test_a_webhook_is_a_client_span_of_the_trace_and_carries_its_context(
    traced: tuple[Platform, OtlpReceiver],
) -> None:
    """An async start's webhook POST is a notifier CLIENT span in the start's trace, and sends that traceparent."""
    platform, receiver = traced
    hooks = Receiver()
    await hooks.start()
    try:
        async with httpx.AsyncClient(base_url=platform.gateway_url, headers={"Authorization": "Bearer key-t"}) as http:
            accepted = await http.post(
                "/v3/workflow/start",
                json=start_body("hello_approval", f"trw-{uuid.uuid4().hex[:10]}", callbackUrl=hooks.hook_url),
            )
        assert accepted.status_code == 202
        [delivery] = await hooks.wait_for(1)
    finally:
        await hooks.close()
    _, trace_id, span_id, _ = delivery.headers["traceparent"].split("-")

    def posted() -> bool:
        has_root = any(s.trace_id == trace_id and not s.parent_id for s in receiver.spans)
        return has_root and any(s.span_id == span_id for s in receiver.spans)

    await receiver.wait_until(posted, timeout=90)
    [client] = [s for s in receiver.spans if s.span_id == span_id]
    assert client.service == "drift-notifier" and client.kind == CLIENT and client.trace_id == trace_id
    roots = [s for s in receiver.spans if s.trace_id == trace_id and not s.parent_id]
    assert [r.service for r in roots] == ["drift-gateway"], "the webhook hangs from the start's request span"


async def test_the_dsl_store_hop_of_a_sync_start_is_inside_the_starts_trace(
    traced: tuple[Platform, OtlpReceiver],
) -> None:
    """The dispatcher's definition read is an httpx CLIENT span; the dsl-store's server span joins the start's trace."""
    platform, receiver = traced
    # A definition change empties the dispatcher's cache of the tenant, so this start reads the dsl-store.
    connection = await nats.connect(platform.infra.nats_url)
    try:
        heard = await connection.subscribe("drift.tracing.evt.dsl.>", max_msgs=1)
        async with httpx.AsyncClient(
            base_url=platform.dsl_store_url, headers={"Authorization": "Bearer key-t"}
        ) as store:
            changed = await store.put(f"/enums/trace-{uuid.uuid4().hex[:8]}", json={"any": "value"})
            assert changed.status_code in (200, 201), changed.text
        await heard.next_msg(timeout=10)
    finally:
        await connection.close()
    async with httpx.AsyncClient(base_url=platform.gateway_url, headers={"Authorization": "Bearer key-t"}) as http:
        before = len(receiver.spans)
        started = await http.post(
            "/v3/workflow/start",
            json=hello(f"trd-{uuid.uuid4().hex[:10]}", "D"),
            timeout=60,
        )
        assert started.json()["workflowStatus"] == "WAITING"
    await _assert_one_trace(receiver, "start", before)

    def hop_arrived() -> bool:
        root = _roots(receiver.spans[before:], "start")[-1]
        return any(s.service == "drift-dsl-store" for s in _trace_of(receiver.spans, root))

    await receiver.wait_until(hop_arrived, timeout=30)
    root = _roots(receiver.spans[before:], "start")[-1]
    trace = _trace_of(receiver.spans, root)
    by_id = {span.span_id: span for span in trace}
    served = [
        s for s in trace if s.service == "drift-dsl-store" and s.kind == SERVER and "workflowDefinition" in s.name
    ]
    assert served, [(s.service, s.name) for s in trace]
    caller = by_id[served[0].parent_id]
    assert caller.service == "drift-dispatcher" and caller.kind == CLIENT, (caller.service, caller.name, caller.kind)
    assert root in _ancestors(served[0], by_id)
    stray = [s for s in receiver.spans[before:] if s.service == "drift-dsl-store" and not s.parent_id]
    assert not [s for s in stray if "workflowDefinition" in s.name], "a definition read started a trace of its own"
