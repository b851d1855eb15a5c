"""Runs under attack: context size, PARALLEL breadth, self-starting children, hanging HTTP endpoints,
undecodable NATS commands and borrowed `Nats-Msg-Id`s.

Each test is one row of the hostile-tenant report, run by `mallory` on the suite's own platform; the
well-behaved tenant `globex` keeps completing ordinary runs within seconds while the attack runs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
import pytest_asyncio
from nats.js.api import DeliverPolicy
from support.loopback import HttpAnswer, HttpRequest, LoopbackServer
from temporalio.client import WorkflowExecutionStatus

from drift_cli.platform import Platform
from drift_runtime import messaging
from drift_runtime.temporal import connect_temporal
from drift_schema import subjects
from drift_schema.run import DEFAULT_MAX_BRANCHES, DEFAULT_MAX_DESCENDANTS, temporal_id
from hostile.support import VICTIM_DEADLINE_S, Hanging, VictimCheck, define, inline

pytestmark = pytest.mark.asyncio(loop_scope="session")


# -- context size -----------------------------------------------------------------------------------


async def test_outputs_past_the_context_bound_fail_the_run_cleanly(
    attacker: httpx.AsyncClient, attacker_store: httpx.AsyncClient, victim_keeps_completing: VictimCheck
) -> None:
    """Twelve SCRIPT nodes writing 250 KB each (3 MB, over Temporal's 2 MB): the node that would cross the
    context bound fails with a clear error, the run ends FAILED, and GET keeps answering FAILED."""
    names = [f"s{i}" for i in range(12)]
    states = {
        name: inline({"type": "SCRIPT", "output": "{% $global.params.blob %}"}, nxt)
        for name, nxt in zip(names, [*names[1:], "done"], strict=True)
    }
    definition_id = await define(
        attacker_store, {**states, "done": inline({"type": "SUCCESS", "disposition": "DONE"})}, "s0"
    )
    run_id = f"runs-context-{uuid.uuid4().hex[:8]}"

    async def attack() -> dict[str, Any]:
        answer = await attacker.post(
            "/v3/workflow/start",
            json={"workflow": {"id": definition_id}, "workflowId": run_id, "params": {"blob": "x" * 250_000}},
        )
        assert answer.status_code == 200, answer.text[:300]
        body: dict[str, Any] = answer.json()
        return body

    task = asyncio.ensure_future(attack())
    await victim_keeps_completing(task)
    finished = task.result()
    assert finished["workflowStatus"] == "FAILED", finished.get("errorMessage")
    assert "would make the run's context" in finished["errorMessage"]
    for _ in range(3):
        again = await attacker.get(f"/v3/workflow/{run_id}")
        assert again.json()["workflowStatus"] == "FAILED"


# -- PARALLEL breadth -------------------------------------------------------------------------------


async def test_a_parallel_of_three_thousand_branches_is_refused_at_publish_with_a_pointer(
    attacker_store: httpx.AsyncClient,
) -> None:
    """PARALLEL with 3,000 branches never reaches a run: publishing answers 422 with a pointer at its branches."""
    branches = [f"b{i}" for i in range(3000)]
    definition_id = f"runs_fan_{uuid.uuid4().hex[:8]}"
    states = {
        "fan": inline({"type": "PARALLEL", "branches": branches}, "done"),
        **{name: inline({"type": "SCRIPT", "output": 1}) for name in branches},
        "done": inline({"type": "SUCCESS", "disposition": "DONE"}),
    }
    created = await attacker_store.post(
        "/workflowDefinition", json={"id": definition_id, "startNode": "fan", "states": states}
    )
    assert created.status_code in (201, 422), created.text[:300]
    if created.status_code == 201:
        answer = await attacker_store.post(f"/workflowDefinition/{definition_id}/publishWorkflow")
    else:
        answer = created
    assert answer.status_code == 422, answer.text[:300]
    errors = answer.json()["errors"]
    fault = next(error for error in errors if error["pointer"] == "/states/fan/nodeDefinition/branches")
    assert f"at most {DEFAULT_MAX_BRANCHES} branches" in fault["message"]


# -- CHILD breadth ----------------------------------------------------------------------------------


async def test_children_that_start_themselves_stay_within_the_descendant_budget(
    hostile_platform: Platform,
    attacker: httpx.AsyncClient,
    attacker_store: httpx.AsyncClient,
    victim_keeps_completing: VictimCheck,
) -> None:
    """Two ASYNC CHILD nodes that start their own workflow: one POST made 511 runs; now the tree stays
    within the run's budget of descendants and the CHILD nodes past it fail with a clear error."""
    definition_id = f"runs_forker_{uuid.uuid4().hex[:8]}"
    child = {"type": "CHILD", "childWorkflowId": definition_id, "executionMode": "ASYNC"}
    await define(
        attacker_store,
        {
            "left": inline(child, "right"),
            "right": inline(child, "done"),
            "done": inline({"type": "SUCCESS", "disposition": "FORKED"}),
        },
        "left",
        id=definition_id,
    )
    run_id = f"runs-fork-{uuid.uuid4().hex[:8]}"
    client = await connect_temporal(hostile_platform.infra.temporal_address, "default")
    query = f"WorkflowId STARTS_WITH '{temporal_id('mallory', run_id)}'"

    async def attack() -> int:
        answer = await attacker.post(
            "/v3/workflow/start", json={"workflow": {"id": definition_id}, "workflowId": run_id}
        )
        assert answer.status_code in (200, 202), answer.text[:300]
        # Visibility has no event to await: poll it, with a deadline, until the whole tree has closed.
        deadline = time.monotonic() + 120
        settled = -1
        while True:
            runs = [run async for run in client.list_workflows(query)]
            done = all(run.status != WorkflowExecutionStatus.RUNNING for run in runs)
            if runs and done and len(runs) == settled:
                return len(runs)
            settled = len(runs) if done else -1
            assert time.monotonic() < deadline, f"{len(runs)} runs still running"
            await asyncio.sleep(1.0)

    task = asyncio.ensure_future(attack())
    await victim_keeps_completing(task)
    assert 1 < task.result() <= 1 + DEFAULT_MAX_DESCENDANTS


# -- fairness of HTTP calls -------------------------------------------------------------------------


class Fast(LoopbackServer):
    async def respond(self, request: HttpRequest) -> HttpAnswer:
        return HttpAnswer(200, b'{"ok": true}')


async def test_a_tenants_hanging_endpoints_never_stall_another_tenants_http_calls(
    attacker: httpx.AsyncClient,
    attacker_store: httpx.AsyncClient,
    victim: httpx.AsyncClient,
    victim_store: httpx.AsyncClient,
    victim_keeps_completing: VictimCheck,
) -> None:
    """mallory's PARALLEL of 100 HTTP calls to an endpoint that hangs holds only its share of the worker's
    activity slots: globex's HTTP calls to a fast endpoint keep answering within seconds."""
    hanging, fast = Hanging(body=b'{"late": true}'), Fast()
    await hanging.start()
    await fast.start()
    try:
        branches = [f"h{i}" for i in range(DEFAULT_MAX_BRANCHES)]
        call = {"type": "HTTP", "timeoutMs": 60_000, "request": {"method": "GET", "url": f"{hanging.url}/hang"}}
        attack_id = await define(
            attacker_store,
            {
                "fan": inline({"type": "PARALLEL", "branches": branches}, "done"),
                **{name: inline(call) for name in branches},
                "done": inline({"type": "SUCCESS", "disposition": "DONE"}),
            },
            "fan",
        )
        victim_id = await define(
            victim_store,
            {
                "call": inline(
                    {
                        "type": "HTTP",
                        "request": {"method": "GET", "url": f"{fast.url}/ok"},
                        "output": "{% $response.body.ok %}",
                    },
                    "done",
                ),
                "done": inline({"type": "SUCCESS", "disposition": "{% $string($global.call) %}"}),
            },
            "call",
        )

        async def attack() -> list[float]:
            started = await attacker.post(
                "/v3/workflow/start",
                json={
                    "workflow": {"id": attack_id},
                    "workflowId": f"runs-hang-{uuid.uuid4().hex[:8]}",
                    "syncTimeoutMs": 0,
                },
            )
            assert started.status_code in (200, 202), started.text[:300]
            await hanging.wait_until(lambda: hanging.arrived >= 10, timeout=60)
            took: list[float] = []
            for n in range(3):
                began = time.monotonic()
                answer = await victim.post(
                    "/v3/workflow/start",
                    json={"workflow": {"id": victim_id}, "workflowId": f"runs-fast-{n}-{uuid.uuid4().hex[:8]}"},
                )
                took.append(time.monotonic() - began)
                assert answer.status_code == 200, answer.text[:300]
                assert (answer.json()["workflowStatus"], answer.json()["disposition"]) == ("COMPLETED", "true")
            return took

        task = asyncio.ensure_future(attack())
        await victim_keeps_completing(task)
        assert max(task.result()) < VICTIM_DEADLINE_S, task.result()
        # The attacker holds its share (a quarter of the worker's 100 slots), never every slot.
        assert hanging.arrived <= 25 + 1, hanging.arrived
    finally:
        hanging.release.set()
        await hanging.close()
        await fast.close()


# -- NATS commands ----------------------------------------------------------------------------------


@dataclass
class Statuses:
    """Status events of one run, read from the JetStream event stream.

    An ordered consumer per wait, from the stream's first message: unlike a core subscription to every tenant's
    events, it can never lose an event to a slow-consumer drop while the attacker floods the stream with big ones.
    """

    js: Any

    async def first(self, tenant: str, workflow_id: str, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        subscription = await self.js.subscribe(
            subjects.workflow_events(tenant, workflow_id), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        seen: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(60):
                async for msg in subscription.messages:
                    event: dict[str, Any] = msgspec.json.decode(msg.data)
                    seen.append(event)
                    if wanted(event):
                        return event
        except TimeoutError:
            raise AssertionError(f"{tenant}/{workflow_id}: no wanted status among {seen}") from None
        finally:
            await subscription.unsubscribe()
        raise AssertionError(f"{tenant}/{workflow_id}: the event subscription ended")


@pytest_asyncio.fixture(loop_scope="session")
async def upstream(hostile_platform: Platform) -> AsyncIterator[tuple[Any, Statuses]]:
    """A JetStream connection as an upstream system publishing commands, and a reader of runs' status events."""
    nc = await messaging.connect(hostile_platform.infra.nats_url, name="hostile-upstream")
    try:
        js = nc.jetstream()
        yield js, Statuses(js)
    finally:
        await nc.drain()


@pytest.mark.parametrize(
    "body",
    [
        b'{"workflow": {"id": "ordinary"}, "workflowId": "%s", "params": {"x": 1e999}}',
        b'{"workflow": {"id": "ordinary"}, "workflowId": "%s", "params": "\xff\xfe"}',
    ],
    ids=["1e999", "invalid-utf8"],
)
async def test_an_undecodable_nats_start_is_rejected(upstream: tuple[Any, Statuses], body: bytes) -> None:
    """A NATS start with `1e999` or invalid UTF-8 gets a REJECTED event (errorCode INVALID) instead of vanishing."""
    js, statuses = upstream
    run_id = f"runs-nats-{uuid.uuid4().hex[:8]}"
    await js.publish(subjects.command("mallory", "start"), body % run_id.encode())
    event = await statuses.first("mallory", run_id, lambda event: event["workflowStatus"] == "REJECTED")
    assert event["errorCode"] == "INVALID"


async def test_one_tenants_nats_msg_id_never_suppresses_anothers(upstream: tuple[Any, Statuses]) -> None:
    """`Nats-Msg-Id: order-42` from mallory: globex's later start with the same id still runs to completion."""
    js, statuses = upstream
    msg_id = f"order-42-{uuid.uuid4().hex[:6]}"
    theirs, ours = f"runs-dedup-m-{uuid.uuid4().hex[:6]}", f"runs-dedup-g-{uuid.uuid4().hex[:6]}"
    start = {"workflow": {"id": "ordinary"}, "params": {"values": [1, 2]}}
    headers = {messaging.MSG_ID: msg_id}
    await js.publish(
        subjects.command("mallory", "start"), msgspec.json.encode({**start, "workflowId": theirs}), headers=headers
    )
    published = time.monotonic()
    await statuses.first("mallory", theirs, lambda event: event["workflowStatus"] == "COMPLETED")
    # Past JetStream's own window (its minimum, 100 ms, shared by every tenant: docs/fairness.md), which only time
    # ends: a pure run can complete sooner than that. The server purges on a timer, hence the margin.
    await asyncio.sleep(max(0.0, published + 3 * messaging.COMMAND_STREAM_DUPLICATE_WINDOW_S - time.monotonic()))
    ack = await js.publish(
        subjects.command("globex", "start"), msgspec.json.encode({**start, "workflowId": ours}), headers=headers
    )
    assert not ack.duplicate, "JetStream's own window suppressed another tenant's id"
    done = await statuses.first("globex", ours, lambda event: event["workflowStatus"] == "COMPLETED")
    assert done["disposition"] == "TOTAL 3"
