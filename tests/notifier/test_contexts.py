"""The run-context writer: stable states reach a real dsl-store through StoreClient; store faults are sorted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.aio.msg import Msg
from support.loopback import HttpAnswer, HttpRequest, LoopbackServer
from support.served import served

from drift_client import StoreClient
from drift_dsl_store.app import create_app
from drift_dsl_store.config import Settings
from drift_notifier.contexts import RunContextWriter, store_client
from drift_runtime.auth import ApiKeys
from drift_runtime.messaging import TransientFault
from drift_schema import codec, ids
from drift_schema.events import WorkflowEvent
from drift_schema.statuses import WorkflowStatus

SERVICE_TOKEN = "svc-token-for-notifier-tests"
TENANT = "acme"


def _msg(event: WorkflowEvent) -> Msg:
    """A status event as the consumer hands it over (outside JetStream: its first delivery)."""
    return Msg(_client=None, subject=f"drift.{TENANT}.evt.workflow.{event.workflow_id}", data=codec.encode(event))  # type: ignore[arg-type]


def _event(run_chain: str, status: WorkflowStatus, seq: int, context: dict[str, Any] | None) -> WorkflowEvent:
    return WorkflowEvent(
        workflow_id="order-7",
        workflow_status=status,
        current_node="approve",
        event_id=ids.status_event_id(run_chain, seq),
        tenant=TENANT,
        seq=seq,
        context=context,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StoreClient]:
    """The notifier's client of a real dsl-store (SQLite, no NATS) served on loopback."""
    settings = Settings(
        store_url=f"sqlite+aiosqlite:///{tmp_path / 'drift.db'}",
        api_keys=ApiKeys({"k-acme": TENANT}),
        service_token=SERVICE_TOKEN,
    )
    async with served(create_app(settings)) as url:
        client = store_client(url, SERVICE_TOKEN)
        try:
            yield client
        finally:
            await client.aclose()


async def test_a_termination_keeps_the_context_of_the_same_runs_last_state(store: StoreClient) -> None:
    """TERMINATED (no context) keeps the same run chain's stored context and node; another run chain's, none."""
    writer = RunContextWriter(store, None)
    run_chain = str(uuid.uuid4())
    await writer.handle(_msg(_event(run_chain, WorkflowStatus.WAITING, 3, {"params": {"x": 1}})))
    kept = await store.run_context("order-7", tenant=TENANT)
    assert kept is not None and (kept.seq, kept.context, kept.run_id) == (3, {"params": {"x": 1}}, run_chain)

    terminated = WorkflowEvent(
        workflow_id="order-7",
        workflow_status=WorkflowStatus.TERMINATED,
        event_id=ids.terminated_event_id(run_chain),
        tenant=TENANT,
        seq=1_000_000,
    )
    await writer.handle(_msg(terminated))
    kept = await store.run_context("order-7", tenant=TENANT)
    assert kept is not None and kept.workflow_status == WorkflowStatus.TERMINATED
    assert (kept.context, kept.current_node) == ({"params": {"x": 1}}, "approve")

    newer_run = msgspec.structs.replace(terminated, event_id=ids.terminated_event_id(str(uuid.uuid4())))
    await writer.handle(_msg(newer_run))
    kept = await store.run_context("order-7", tenant=TENANT)
    assert kept is not None and kept.context == {}  # another run chain: nothing of the old run's state carries over
    assert await store.run_context("order-7", tenant="globex") is None


class RefusingStore(LoopbackServer):
    """Answers every request with one status, as problem details."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status
        self.requests: list[HttpRequest] = []

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        self.requests.append(request)
        body = codec.encode({"title": "refused", "status": self.status})
        return HttpAnswer(self.status, body, "application/problem+json")


@pytest.mark.parametrize(("status", "transient"), [(503, True), (429, True), (409, True), (422, False)])
async def test_store_faults_are_retried_or_dropped_by_their_status(status: int, transient: bool) -> None:
    """A 5xx, 429 or 409 makes the write wait in the stream (TransientFault); a 422 refuses it for good."""
    refusing = RefusingStore(status)
    await refusing.start()
    store = StoreClient(refusing.url, SERVICE_TOKEN, retries=0)
    try:
        writer = RunContextWriter(store, None)
        handled = writer.handle(_msg(_event(str(uuid.uuid4()), WorkflowStatus.COMPLETED, 2, {})))
        if transient:
            with pytest.raises(TransientFault):
                await handled
        else:
            await handled
    finally:
        await store.aclose()
        await refusing.close()
    assert [(request.method, request.headers["x-drift-tenant"]) for request in refusing.requests] == [("PUT", TENANT)]
