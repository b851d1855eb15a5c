"""`drift_client.StoreClient` against a real dsl-store on loopback, and against a stub for faults and trace context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_trace_id
from support.loopback import HttpAnswer, HttpRequest, LoopbackServer
from support.served import served

from drift_cli.servers import free_port
from drift_client import (
    ConflictError,
    InvalidError,
    NotAuthorizedError,
    NotFoundError,
    StoreClient,
    UnavailableError,
    UnreachableError,
)
from drift_dsl_store.app import create_app
from drift_dsl_store.config import Settings
from drift_runtime.auth import ApiKeys
from drift_schema.context import RunContext
from drift_schema.statuses import WorkflowStatus

SERVICE_TOKEN = "svc-token-for-client-tests"
NODE = {"id": "calc", "type": "SCRIPT", "output": "{% $params.x %}"}
DONE = {"id": "done", "type": "SUCCESS", "disposition": "OK"}
FLOW = {
    "id": "flow",
    "startNode": "first",
    "states": {"first": {"resourceId": "calc", "nextNode": "last"}, "last": {"resourceId": "done", "end": True}},
}


@pytest.fixture
async def store_url(tmp_path: Path) -> AsyncIterator[str]:
    """A dsl-store (SQLite, no NATS) served over loopback; the tenants acme and globex and the service token."""
    settings = Settings(
        store_url=f"sqlite+aiosqlite:///{tmp_path / 'drift.db'}",
        api_keys=ApiKeys({"k-acme": "acme", "k-globex": "globex"}),
        service_token=SERVICE_TOKEN,
    )
    async with served(create_app(settings)) as url:
        yield url


async def test_the_service_token_acts_for_the_tenant_each_call_names(store_url: str) -> None:
    """With the service token, reads and run-context writes reach the named tenant's data and no other's."""
    async with StoreClient(store_url, "k-acme") as acme:
        imported = await acme.import_bundle(
            {"nodeDefinitions": [NODE, DONE], "workflowDefinitions": [FLOW]}, publish=True
        )
        assert imported.created == ["calc", "done", "flow"]
    async with StoreClient(store_url, SERVICE_TOKEN) as store:
        pinned = await store.workflow("flow", "ACTIVE", enriched=True, tenant="acme")
        assert pinned is not None and pinned.version == "1"
        assert pinned.states["first"].node_definition is not None  # enriched: the node is inlined
        assert await store.workflow("flow", "ACTIVE", tenant="globex") is None
        assert await store.workflow("flow", "not-a-version", tenant="acme") is None  # 422: as absent as a 404
        assert (await store.node("calc", "1", tenant="acme")) is not None
        assert await store.node("calc", "1", tenant="globex") is None
        assert await store.enums(tenant="acme") == {}
        split = await store.traffic_split("flow", tenant="acme")
        assert split is not None and [weight.version for weight in split.split] == ["1"]
        assert await store.traffic_split("flow", tenant="globex") is None

        record = RunContext(
            workflow_id="order-1",
            workflow_status=WorkflowStatus.WAITING,
            run_id="r1",
            seq=2,
            updated_at=datetime.now(UTC),
            context={"params": {"x": 1}},
        )
        assert await store.put_run_context(record, tenant="acme") == 2
        older = RunContext(**{**_fields(record), "seq": 1})
        assert await store.put_run_context(older, tenant="acme") == 2  # the store keeps the higher seq
        kept = await store.run_context("order-1", tenant="acme")
        assert kept is not None and kept.context == {"params": {"x": 1}}
        assert await store.run_context("order-1", tenant="globex") is None


async def test_problem_answers_raise_typed_errors(store_url: str) -> None:
    """404, 409, 422 and 401 problem answers raise NotFoundError, ConflictError, InvalidError and NotAuthorizedError."""
    async with StoreClient(store_url, "k-acme") as acme:
        await acme.import_bundle({"nodeDefinitions": [NODE, DONE], "workflowDefinitions": [FLOW]}, publish=True)
        with pytest.raises(NotFoundError) as missing:
            await acme.delete_workflow("nothing-here")
        assert missing.value.status == 404
        with pytest.raises(ConflictError) as referenced:
            await acme.delete_node("calc")
        assert "flow" in (referenced.value.problem.detail or "")
        with pytest.raises(InvalidError) as invalid:
            await acme.import_bundle({"workflowDefinitions": [{**FLOW, "startNode": "nowhere"}]})
        assert invalid.value.problem.errors
    async with StoreClient(store_url, "k-unknown") as stranger:
        with pytest.raises(NotAuthorizedError):
            await stranger.list_workflows()


async def test_an_unreachable_store_raises_unreachable_as_unavailable() -> None:
    """Nothing listening: UnreachableError, an UnavailableError with status 503 naming the URL."""
    url = f"http://127.0.0.1:{free_port()}"
    async with StoreClient(url, SERVICE_TOKEN, retries=1) as store:
        with pytest.raises(UnavailableError) as error:
            await store.enums(tenant="acme")
    assert isinstance(error.value, UnreachableError)
    assert error.value.status == 503 and error.value.url.startswith(url)


class FlakyStore(LoopbackServer):
    """Answers 503 to the first `failures` requests, then 200 `{}`; keeps every request."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.requests: list[HttpRequest] = []

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        self.requests.append(request)
        if len(self.requests) <= self.failures:
            return HttpAnswer(503, b'{"title":"Service Unavailable","status":503}', "application/problem+json")
        return HttpAnswer(200, b'{"seq": 4}')


@pytest.fixture
async def flaky() -> AsyncIterator[FlakyStore]:
    server = FlakyStore(failures=2)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def test_idempotent_calls_are_retried_through_a_transient_fault(flaky: FlakyStore) -> None:
    """A GET retried through two 503s answers; the service token and tenant travel on every attempt."""
    async with StoreClient(flaky.url, SERVICE_TOKEN, retries=2) as store:
        assert await store.enums(tenant="acme") == {"seq": 4}
    assert [request.method for request in flaky.requests] == ["GET"] * 3
    for request in flaky.requests:
        assert request.headers["authorization"] == f"Bearer {SERVICE_TOKEN}"
        assert request.headers["x-drift-tenant"] == "acme"


async def test_a_post_is_not_retried_once_sent(flaky: FlakyStore) -> None:
    """A POST that got a 503 is not sent again (it may have been applied): UnavailableError at once."""
    async with StoreClient(flaky.url, "k-acme", retries=2) as store:
        with pytest.raises(UnavailableError) as error:
            await store.import_bundle({"nodeDefinitions": [NODE]})
    assert error.value.status == 503 and not isinstance(error.value, UnreachableError)
    assert len(flaky.requests) == 1


class SilentStore(LoopbackServer):
    """Reads each request and never answers it."""

    wait_for_clients = False

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[HttpRequest] = []
        self.never = asyncio.Event()

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        self.requests.append(request)
        await self.notify()
        await self.never.wait()
        raise AssertionError("never answered")


async def test_a_call_that_timed_out_is_not_sent_again() -> None:
    """A GET that waited out its timeout raises UnreachableError at once: the caller waits one timeout, not three."""
    silent = SilentStore()
    await silent.start()
    try:
        async with StoreClient(silent.url, SERVICE_TOKEN, timeout=httpx.Timeout(0.5, connect=2.0), retries=2) as store:
            with pytest.raises(UnreachableError):
                await store.enums(tenant="acme")
        assert len(silent.requests) == 1
    finally:
        await silent.close()


async def test_every_call_carries_the_current_trace_context(flaky: FlakyStore) -> None:
    """Inside a span, each request (retries included) sends a traceparent naming that span's trace."""
    tracer = TracerProvider().get_tracer("tests.client")
    async with StoreClient(flaky.url, SERVICE_TOKEN) as store:
        with tracer.start_as_current_span("start a run") as span:
            await store.enums(tenant="acme")
    trace_id = format_trace_id(span.get_span_context().trace_id)
    assert len(flaky.requests) == 3
    for request in flaky.requests:
        assert request.headers["traceparent"].split("-")[1] == trace_id


def _fields(record: RunContext) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__struct_fields__}
