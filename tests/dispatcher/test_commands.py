"""Commands no one can decode, per-tenant deduplication and the per-tenant running-runs limit, on real servers."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from prometheus_client import REGISTRY
from temporalio.service import RPCError, RPCStatusCode

from dispatcher.support import MAX_RUNNING, Stack
from drift_runtime import messaging
from drift_schema import subjects
from drift_schema.run import temporal_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _tenant(name: str) -> str:
    """A tenant of this test alone: the running-runs limit counts each tenant's runs."""
    return f"{name}{uuid.uuid4().hex[:6]}"


def _counted(outcome: str, kind: str = "start") -> float:
    return REGISTRY.get_sample_value("drift_commands_total", {"kind": kind, "outcome": outcome}) or 0.0


async def _never_started(stack: Stack, tenant: str, workflow_id: str) -> bool:
    try:
        await stack.client.get_workflow_handle(temporal_id(tenant, workflow_id)).describe()
    except RPCError as error:
        return error.status == RPCStatusCode.NOT_FOUND
    return False


@pytest.mark.parametrize(
    "body",
    [
        b'{"workflow": {"id": "quick"}, "workflowId": "%s", "params": {"n": 1e999}}',
        b'{"workflow": {"id": "quick"}, "workflowId": "%s", "params": {"name": "\xff\xfe"}}',
    ],
    ids=["non-finite-number", "invalid-utf8"],
)
async def test_an_undecodable_start_with_a_known_run_id_is_rejected(stack: Stack, body: bytes) -> None:
    """A NATS start with `1e999` or invalid UTF-8 gets one REJECTED event with errorCode INVALID, and starts nothing."""
    workflow_id, globex = _id("bad"), _tenant("globex")
    await stack.command(globex, "start", body % workflow_id.encode())
    event = await stack.events.status(globex, workflow_id, "REJECTED")
    assert event["errorCode"] == "INVALID"
    assert event["errorMessage"].startswith("invalid start command")
    assert await _never_started(stack, globex, workflow_id)


async def test_an_undecodable_command_without_a_run_id_is_a_counted_poison_message(stack: Stack) -> None:
    """Bytes with no run id to answer are logged and counted as poison; the dispatcher goes on with the next command."""
    before, globex = _counted("poison"), _tenant("globex")
    await stack.command(globex, "start", b"\xff\xfe{not json")
    await stack.marker(globex)
    assert _counted("poison") == before + 1


async def test_a_run_id_ending_in_a_newline_is_never_started(stack: Stack) -> None:
    """`workflowId` "x\\n" passes a `$`-anchored pattern: checked exactly, it is poison, no run starts."""
    workflow_id, globex = _id("nl"), _tenant("globex")
    before = _counted("poison")
    await stack.command(globex, "start", {"workflow": {"id": "quick"}, "workflowId": f"{workflow_id}\n"})
    await stack.marker(globex)
    assert _counted("poison") == before + 1
    assert await _never_started(stack, globex, f"{workflow_id}\n")


async def _past_stream_window(published: float) -> None:
    """Until JetStream's own duplicate window (its minimum, 100 ms, shared by every tenant: docs/fairness.md) has
    passed since `published`: only time ends it, and a run can reach RUNNING sooner. The server purges on a timer,
    hence the margin."""
    await asyncio.sleep(max(0.0, published + 3 * messaging.COMMAND_STREAM_DUPLICATE_WINDOW_S - time.monotonic()))


async def test_one_tenants_message_id_never_suppresses_anothers(stack: Stack) -> None:
    """`Nats-Msg-Id: order-42` from mallory leaves globex's later `order-42` to run; globex's own repeat is dropped."""
    msg_id, mallory, globex = _id("order-42"), _tenant("mallory"), _tenant("globex")
    first, second, repeat = _id("m"), _id("g"), _id("g-again")
    await stack.command(mallory, "start", {"workflow": {"id": "quick"}, "workflowId": first}, msg_id)
    published = time.monotonic()
    assert (await stack.events.status(mallory, first, "RUNNING"))["commandId"] == msg_id
    await _past_stream_window(published)
    await stack.command(globex, "start", {"workflow": {"id": "quick"}, "workflowId": second}, msg_id)
    published = time.monotonic()
    assert (await stack.events.status(globex, second, "RUNNING"))["commandId"] == msg_id
    # Past the stream's window again, so the repeat reaches the dispatcher: its per-tenant tracking drops it.
    await _past_stream_window(published)
    before = _counted("duplicate")
    await stack.command(globex, "start", {"workflow": {"id": "quick"}, "workflowId": repeat}, msg_id)
    await stack.marker(globex)
    assert _counted("duplicate") == before + 1
    assert await _never_started(stack, globex, repeat)
    assert not stack.events.by_run[(globex, repeat)]


async def test_the_stream_keeps_no_cross_tenant_duplicate_window(stack: Stack) -> None:
    """The command stream's own duplicate window (shared by every tenant) is JetStream's minimum, not minutes."""
    info = await stack.js.stream_info(subjects.COMMAND_STREAM)
    assert info.config.duplicate_window == pytest.approx(messaging.COMMAND_STREAM_DUPLICATE_WINDOW_S)


async def test_a_command_claimed_before_a_crash_is_still_applied_on_redelivery(stack: Stack) -> None:
    """A dispatcher that recorded a message's id and crashed before applying it loses nothing: the redelivery
    of that same message (same stream sequence) is applied, while another message with the id is not."""
    info = await stack.js.stream_info(subjects.COMMAND_STREAM)
    upcoming = info.state.last_seq + 1
    msg_id, globex = _id("crash"), _tenant("globex")
    assert await stack.duplicates.first(globex, msg_id, upcoming)  # the crashed dispatcher's claim
    workflow_id = _id("after-crash")
    seq = await stack.command(globex, "start", {"workflow": {"id": "quick"}, "workflowId": workflow_id}, msg_id)
    assert seq == upcoming
    assert (await stack.events.status(globex, workflow_id, "RUNNING"))["commandId"] == msg_id
    assert await stack.duplicates.first(globex, msg_id, upcoming)
    assert not await stack.duplicates.first(globex, msg_id, upcoming + 1)
    assert await stack.duplicates.first(_tenant("acme"), msg_id, upcoming + 1)


async def test_a_start_past_the_tenants_running_limit_is_rejected_limited(stack: Stack) -> None:
    """With `MAX_RUNNING` runs of a tenant running, its next start is REJECTED with errorCode LIMITED;
    another tenant still starts."""
    held, busy = [_id("held") for _ in range(MAX_RUNNING)], _tenant("busy")
    for workflow_id in held:
        await stack.command(busy, "start", {"workflow": {"id": "hold"}, "workflowId": workflow_id})
    for workflow_id in held:
        await stack.events.status(busy, workflow_id, "WAITING")
    over = _id("over")
    await stack.command(busy, "start", {"workflow": {"id": "quick"}, "workflowId": over})
    event = await stack.events.status(busy, over, "REJECTED")
    assert event["errorCode"] == "LIMITED"
    assert f"{MAX_RUNNING} runs running" in event["errorMessage"]
    assert await _never_started(stack, busy, over)
    await stack.marker(_tenant("acme"))
    for workflow_id in held:
        await stack.client.get_workflow_handle(temporal_id(busy, workflow_id)).terminate("test over")


async def test_an_event_name_ending_in_a_newline_is_rejected(stack: Stack) -> None:
    """An event command whose name is not valid exactly (a final newline) is REJECTED INVALID; the run keeps waiting."""
    tenant, workflow_id = _tenant("globex"), _id("evt")
    await stack.command(tenant, "start", {"workflow": {"id": "hold"}, "workflowId": workflow_id})
    await stack.events.status(tenant, workflow_id, "WAITING")
    await stack.command(tenant, "event", {"workflowId": workflow_id, "event": "go\n"})
    event = await stack.events.status(tenant, workflow_id, "REJECTED")
    assert (event["errorCode"], event["errorMessage"]) == ("INVALID", "event is not a valid event name")
    await stack.client.get_workflow_handle(temporal_id(tenant, workflow_id)).terminate("test over")
