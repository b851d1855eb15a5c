"""Interaction modes: terminate, async webhooks, and the NATS command interface."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
import pytest_asyncio
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck
from prometheus_client import REGISTRY
from standardwebhooks import Webhook
from support.starts import hello, start_body

from drift_cli.platform import Platform
from drift_cli.servers import InfraStack, free_port
from drift_dispatcher.app import run as run_dispatcher
from drift_dispatcher.config import Settings as DispatcherSettings
from drift_runtime.messaging import replay
from drift_schema.run import DEFAULT_TASK_QUEUE
from e2e.keys import WEBHOOK_SECRET
from e2e.receiver import Receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")

Events = asyncio.Queue[dict[str, Any]]
"""A run's status events (decoded JSON) in arrival order."""


def _run_id(prefix: str = "ix") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _start_body(workflow_id: str, **extra: object) -> dict[str, object]:
    return hello(workflow_id, "Ada", **extra)


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as hooks:
        yield hooks


async def test_terminate_ends_a_waiting_run_and_it_stays_terminated(gateway: httpx.AsyncClient) -> None:
    """DELETE terminate answers TERMINATED; GET then shows TERMINATED; resume and a second terminate conflict."""
    workflow_id = _run_id()
    assert (await gateway.post("/v3/workflow/start", json=_start_body(workflow_id))).status_code == 200
    ended = await gateway.delete(f"/v3/workflow/terminate/{workflow_id}")
    assert ended.status_code == 200, ended.text
    assert ended.json() == {"workflowId": workflow_id, "workflowStatus": "TERMINATED"}
    assert (await gateway.get(f"/v3/workflow/{workflow_id}")).json()["workflowStatus"] == "TERMINATED"
    resumed = await gateway.put(
        f"/v3/workflow/resume/{workflow_id}", json={"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}}
    )
    assert resumed.status_code == 409
    assert (await gateway.delete(f"/v3/workflow/terminate/{workflow_id}")).status_code == 409
    assert (await gateway.delete("/v3/workflow/terminate/never-started")).status_code == 404


async def test_async_start_delivers_signed_webhooks_and_retries_with_the_same_id(
    gateway: httpx.AsyncClient, receiver: Receiver
) -> None:
    """With callbackUrl: 202 at once; WAITING arrives signed; a retry keeps its id; each carries its `webhook-seq`."""
    receiver.statuses = [503]
    workflow_id = _run_id("hook")
    accepted = await gateway.post("/v3/workflow/start", json=_start_body(workflow_id, callbackUrl=receiver.hook_url))
    assert accepted.status_code == 202
    assert accepted.json() == {"workflowId": workflow_id, "workflowStatus": "CREATED"}

    first, retry = await receiver.wait_for(2)
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]
    verifier = Webhook(WEBHOOK_SECRET)
    payload = verifier.verify(retry.body, retry.headers)
    assert payload["workflowId"] == workflow_id
    assert payload["workflowStatus"] == "WAITING"
    assert payload["view"]["inputOptions"][0]["id"] == "decision"

    resumed = await gateway.put(
        f"/v3/workflow/resume/{workflow_id}",
        json={"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}, "callbackUrl": receiver.hook_url},
    )
    assert resumed.status_code == 202
    *_, completed = await receiver.wait_for(3)
    final = verifier.verify(completed.body, completed.headers)
    assert final["workflowStatus"] == "COMPLETED"
    assert final["disposition"] == "APPROVED: Hello, Ada!"
    assert completed.headers["webhook-id"] != first.headers["webhook-id"]
    # Each carries its status's seq (receivers order by it), the same number its signed webhook-id ends with.
    for hook in (first, retry, completed):
        assert hook.headers["webhook-seq"] == hook.headers["webhook-id"].rsplit(":s", 1)[1]
    assert int(completed.headers["webhook-seq"]) > int(retry.headers["webhook-seq"])


async def test_callback_urls_pass_the_ssrf_guard(gateway: httpx.AsyncClient) -> None:
    """A callbackUrl at a metadata or private address is refused with 422 before anything runs."""
    refused_urls = (
        "http://169.254.169.254/latest",
        "http://10.1.2.3/hook",
        "http://2130706434/",  # 127.0.0.2: loopback, and not in the allow list
        "http://[::ffff:10.0.0.1]/",
        "ftp://example/",
    )
    for url in refused_urls:
        refused = await gateway.post("/v3/workflow/start", json=_start_body(_run_id(), callbackUrl=url))
        assert refused.status_code == 422, url
        assert refused.json()["errors"][0]["pointer"] == "/callbackUrl"


@contextlib.asynccontextmanager
async def _watching(nats_url: str, subject: str) -> AsyncIterator[tuple[JetStreamContext, Events]]:
    """JetStream to publish commands with, and the events on `subject` as they arrive; closed afterwards."""
    connection = await nats.connect(nats_url)
    queue: Events = asyncio.Queue()

    async def on_message(msg: Msg) -> None:
        await queue.put(json.loads(msg.data))

    await connection.subscribe(subject, cb=on_message)
    await connection.flush()
    try:
        yield connection.jetstream(), queue
    finally:
        await connection.close()


async def _command(
    js: JetStreamContext, kind: str, body: object, *, msg_id: str | None = None, naming: str | None = None
) -> PubAck:
    """Publish a `drift.acme.cmd.<kind>` command: bytes as they are, anything else as JSON.

    A fresh Nats-Msg-Id unless `msg_id` is given; `naming` sets the Drift-Workflow-Id header (the run a body
    that cannot be decoded is for).
    """
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Nats-Msg-Id": msg_id or uuid.uuid4().hex}
    if naming is not None:
        headers["Drift-Workflow-Id"] = naming
    return await js.publish(f"drift.acme.cmd.{kind}", data, headers=headers)


async def _next_with_status(queue: Events, status: str) -> dict[str, Any]:
    while True:
        event = await asyncio.wait_for(queue.get(), timeout=30)
        if event["workflowStatus"] == status:
            return event


async def test_nats_start_runs_once_for_a_resent_command(platform: object, infra: InfraStack) -> None:
    """A start re-sent over NATS with the same Nats-Msg-Id is a duplicate: one run, one series of events."""
    workflow_id = _run_id("nats")
    async with _watching(infra.nats_url, f"drift.acme.evt.workflow.{workflow_id}") as (js, events):
        first = await _command(js, "start", _start_body(workflow_id), msg_id=f"upstream-{workflow_id}")
        second = await _command(js, "start", _start_body(workflow_id), msg_id=f"upstream-{workflow_id}")
        assert not first.duplicate and second.duplicate
        waiting = await _next_with_status(events, "WAITING")
        assert waiting["tenant"] == "acme" and waiting["seq"] == 2

        approve = {"workflowId": workflow_id, "viewResponse": {"selectedOptions": {"decision": "APPROVE"}}}
        await _command(js, "resume", approve, msg_id=f"upstream-resume-{workflow_id}")
        completed = await _next_with_status(events, "COMPLETED")
        assert completed["disposition"] == "APPROVED: Hello, Ada!"
        assert [e["seq"] for e in (waiting, completed)] == sorted(e["seq"] for e in (waiting, completed))


async def test_nats_commands_that_cannot_run_are_rejected_once(platform: object, infra: InfraStack) -> None:
    """An unknown definition, an invalid body and an unknown run each yield a REJECTED event with a reason."""
    workflow_id = _run_id("rej")
    async with _watching(infra.nats_url, f"drift.acme.evt.workflow.{workflow_id}") as (js, events):
        await _command(js, "start", start_body("no_such_flow", workflow_id))
        unknown = await _next_with_status(events, "REJECTED")
        assert unknown["errorCode"] == "NOT_FOUND" and "no_such_flow" in str(unknown["errorMessage"])

        await _command(js, "start", b'{"workflowId": 17}', naming=workflow_id)
        invalid = await _next_with_status(events, "REJECTED")
        assert invalid["errorCode"] == "INVALID"

        await _command(js, "resume", {"workflowId": workflow_id, "viewResponse": {"selectedOptions": {}}})
        missing = await _next_with_status(events, "REJECTED")
        assert missing["errorCode"] == "NOT_FOUND"


async def _acked_by_dispatcher(js: JetStreamContext, stream_seq: int) -> None:
    """Wait until the dispatcher's durable consumer has acked (or terminated) the message at `stream_seq`."""
    deadline = asyncio.get_running_loop().time() + 30
    while (await js.consumer_info("DRIFT_COMMANDS", "dispatcher")).ack_floor.stream_seq < stream_seq:
        assert asyncio.get_running_loop().time() < deadline, "the dispatcher never finished with the command"
        await asyncio.sleep(0.1)


async def _stored_statuses(js: JetStreamContext, workflow_id: str) -> list[str]:
    return [
        json.loads(msg.data)["workflowStatus"]
        async for msg in replay(js, f"drift.acme.evt.workflow.{workflow_id}", "DRIFT_EVENTS")
    ]


async def test_a_poison_command_yields_exactly_one_rejection_and_is_not_redelivered(
    platform: object, infra: InfraStack
) -> None:
    """An undecodable command naming its run gets one REJECTED event and is acked; one naming none is terminated."""
    workflow_id = _run_id("poison")
    async with _watching(infra.nats_url, f"drift.acme.evt.workflow.{workflow_id}") as (js, events):
        named = await _command(js, "resume", b"\xff not json", naming=workflow_id)
        rejected = await _next_with_status(events, "REJECTED")
        assert rejected["errorCode"] == "INVALID"
        await _acked_by_dispatcher(js, named.seq)
        assert await _stored_statuses(js, workflow_id) == ["REJECTED"]

        anonymous = await _command(js, "start", b"[]")
        # A nak'd (to be redelivered) message would hold the ack floor back: passing it means terminated.
        await _acked_by_dispatcher(js, anonymous.seq)


async def test_commands_for_one_run_apply_in_order(platform: object, infra: InfraStack) -> None:
    """A start and a terminate for one run published back to back: the terminate applies after the start."""
    workflow_id = _run_id("order")
    async with _watching(infra.nats_url, f"drift.acme.evt.workflow.{workflow_id}") as (js, events):
        await _command(js, "start", _start_body(workflow_id))
        ended = await _command(js, "terminate", {"workflowId": workflow_id, "reason": "in order"})
        terminated = await _next_with_status(events, "TERMINATED")
        assert terminated["errorMessage"] == "in order"
        await _acked_by_dispatcher(js, ended.seq)
        assert "REJECTED" not in await _stored_statuses(js, workflow_id)


async def test_the_dispatcher_consumer_redelivers_without_limit(platform: object, infra: InfraStack) -> None:
    """The dispatcher's consumer never gives up on a command: deliveries are unlimited, acks explicit.

    (The outages themselves, NATS, Temporal and Redis killed under load, are caused by the fault drills.)
    """
    connection = await nats.connect(infra.nats_url)
    try:
        info = await connection.jetstream().consumer_info("DRIFT_COMMANDS", "dispatcher")
        assert info.config.max_deliver in (None, -1), info.config.max_deliver
        assert str(info.config.ack_policy).lower().endswith("explicit")
    finally:
        await connection.close()


async def test_dispatchers_sharing_the_durable_consumer_split_the_commands(
    platform: Platform, infra: InfraStack
) -> None:
    """A second dispatcher on the same durable (a queue group) takes a share of the commands; each runs once."""
    settings = DispatcherSettings(
        nats_url=infra.nats_url,
        temporal_address=infra.temporal_address,
        temporal_namespace="default",
        task_queue=DEFAULT_TASK_QUEUE,
        dsl_store_url=platform.dsl_store_url,
        service_token=platform.secrets.service_token,
        metrics_port=free_port(),
        log_format="json",
        log_level="WARNING",
        stream_replicas=1,
        bind_host="127.0.0.1",
        concurrency=4,
    )
    stop = asyncio.Event()
    second = asyncio.create_task(run_dispatcher(settings, stop))
    # It starts consuming right after its health endpoint answers: publish only then, or the platform's
    # dispatcher alone takes every command. Another task's start-up has no event to await: polled.
    async with httpx.AsyncClient(timeout=2) as probe:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await probe.get(f"http://127.0.0.1:{settings.metrics_port}/health/ready")).status_code == 200:
                    break
            assert not second.done(), second
            assert asyncio.get_running_loop().time() < deadline, "the second dispatcher never became ready"
            await asyncio.sleep(0.1)
    prefix = _run_id("qg")
    workflow_ids = [f"{prefix}-{n}" for n in range(24)]
    # The counter is the process's: in-process dispatchers of earlier tests (tests/dispatcher) counted into it too.
    before = REGISTRY.get_sample_value("drift_commands_total", {"kind": "start", "outcome": "accepted"}) or 0
    try:
        async with _watching(infra.nats_url, "drift.acme.evt.workflow.*") as (js, events):
            for workflow_id in workflow_ids:
                last = await _command(js, "start", _start_body(workflow_id))
            waiting: dict[str, int] = {}
            while len(waiting) < len(workflow_ids):
                event = await asyncio.wait_for(events.get(), timeout=60)
                if not str(event["workflowId"]).startswith(prefix):
                    continue
                assert event["workflowStatus"] != "REJECTED", event
                if event["workflowStatus"] == "WAITING":
                    waiting[str(event["workflowId"])] = waiting.get(str(event["workflowId"]), 0) + 1
            assert set(waiting) == set(workflow_ids) and set(waiting.values()) == {1}
            # Every event, not only the first WAITING of each: once both dispatchers acked every command,
            # the stream holds one chain per run (seq 1..n, one WAITING, no REJECTED).
            await _acked_by_dispatcher(js, last.seq)
            for workflow_id in workflow_ids:
                stored = [
                    json.loads(msg.data)
                    async for msg in replay(js, f"drift.acme.evt.workflow.{workflow_id}", "DRIFT_EVENTS")
                ]
                statuses = [event["workflowStatus"] for event in stored]
                assert statuses.count("WAITING") == 1 and "REJECTED" not in statuses, (workflow_id, statuses)
                assert [event["seq"] for event in stored] == list(range(1, len(stored) + 1)), (workflow_id, stored)
                assert len({str(event["eventId"]).rsplit(":", 1)[0] for event in stored}) == 1, (workflow_id, stored)
            after = REGISTRY.get_sample_value("drift_commands_total", {"kind": "start", "outcome": "accepted"}) or 0
            here = after - before
            assert 0 < here < len(workflow_ids), f"the in-process dispatcher took {here} of {len(workflow_ids)}"
    finally:
        stop.set()
        await asyncio.wait_for(second, timeout=30)
