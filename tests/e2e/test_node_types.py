"""Node types through the whole stack: gateway -> NATS -> dispatcher -> worker -> notifier (contract 4.1, 5, 6).

The worker-level tests (tests/worker) drive the workflow directly; these go through the public API only, with
definitions published and activated in the dsl-store, and watch the run's NATS events where the contract offers them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import nats
import pytest
from nats.aio.msg import Msg

from drift_cli.platform import Platform
from drift_cli.servers import InfraStack
from drift_runtime.ssrf import Guard, SsrfRefused, parse_hosts
from e2e.definitions import define, ok, on_event, script, start, state, success
from e2e.definitions import run_id as new_run_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

EVENT_TIMEOUT_S = 30.0
REFUSED_URL = "http://127.0.0.2:9/latest/meta-data/"
"""A loopback IP literal outside the allow list: the SSRF guard refuses it without any I/O.

Loopback on purpose: should the guard's wiring ever regress, the attempt still stays on this machine
(tests send traffic to loopback only); the metadata address itself is covered by the guard's own tests.

Why no packet leaves the machine: the worker's only HTTP client (`drift_worker.ssrf.guarded_client`, no proxies,
`trust_env=False`) runs every TCP connect through `GuardedBackend.connect_tcp`, which first awaits
`drift_runtime.ssrf.Guard.vet`. For an IP literal `vet` takes `parse_address(host)` and never calls `getaddrinfo`
(no DNS query either); 127.0.0.2 is loopback, so `is_public` is false, and it is not in the stack's
`DRIFT_HTTP_ALLOW_HOSTS` (`localhost,127.0.0.1,::1`), so `vet` raises `SsrfRefused` before
`inner.connect_tcp` (the only place a socket is opened) is reached.
"""


class _Events:
    """The `drift.acme.evt.workflow.<id>` events of one run, as they arrive."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []

    async def on_message(self, msg: Msg) -> None:
        await self.queue.put(json.loads(msg.data))

    async def status(self, status: str) -> dict[str, Any]:
        """The next event with `status` (events before it are kept in `seen`)."""
        while True:
            event = await asyncio.wait_for(self.queue.get(), timeout=EVENT_TIMEOUT_S)
            self.seen.append(event)
            if event["workflowStatus"] == status:
                return event


@asynccontextmanager
async def _watch(nats_url: str, workflow_id: str) -> AsyncIterator[tuple[nats.NATS, _Events]]:
    connection = await nats.connect(nats_url)
    events = _Events()
    try:
        await connection.subscribe(f"drift.acme.evt.workflow.{workflow_id}", cb=events.on_message)
        await connection.flush()
        yield connection, events
    finally:
        await connection.close()


EVENT_FLOW: dict[str, Any] = {
    "await_payment": on_event("paid", "thank"),
    "thank": script("{% 'paid ' & $string($global.await_payment.amount) %}", "done"),
    "done": success("{% $global.thank %}"),
}


async def test_http_event_resumes_an_on_event_wait_and_its_body_becomes_the_output(
    platform: Platform, gateway: httpx.AsyncClient
) -> None:
    """POST /event/{event} resumes an ON_EVENT wait, answers the next state, and its body is the instance's output."""
    definition_id = await define(platform, EVENT_FLOW, "await_payment")
    run_id = new_run_id("evt")
    waiting = await start(gateway, definition_id, run_id, params={})
    assert (waiting["workflowStatus"], waiting["currentNode"]) == ("WAITING", "await_payment"), waiting

    # An event the run does not wait for moves nothing.
    wrong = await gateway.post(f"/v3/workflow/{run_id}/event/refunded", json={"amount": 1})
    assert wrong.status_code == 409, wrong.text
    assert ok(await gateway.get(f"/v3/workflow/{run_id}"))["workflowStatus"] == "WAITING"

    resumed = ok(await gateway.post(f"/v3/workflow/{run_id}/event/paid", json={"amount": 12, "currency": "EUR"}))
    assert resumed["workflowId"] == run_id
    assert (resumed["workflowStatus"], resumed["disposition"]) == ("COMPLETED", "paid 12"), resumed
    detail = ok(await gateway.get(f"/v3/workflow/{run_id}"))
    assert detail["workflowStatus"] == "COMPLETED"
    assert detail["context"]["await_payment"] == {"amount": 12, "currency": "EUR"}
    assert detail["context"]["thank"] == "paid 12"


async def test_nats_event_command_resumes_an_on_event_wait(
    platform: Platform, infra: InfraStack, gateway: httpx.AsyncClient
) -> None:
    """`drift.<tenant>.cmd.event` resumes an ON_EVENT wait: the run's events go WAITING -> ... -> COMPLETED in seq
    order, and the command's payload is the instance's output."""
    definition_id = await define(platform, EVENT_FLOW, "await_payment")
    run_id = new_run_id("nevt")
    async with _watch(infra.nats_url, run_id) as (connection, events):
        waiting = await start(gateway, definition_id, run_id, params={})
        assert waiting["workflowStatus"] == "WAITING", waiting
        announced = await events.status("WAITING")
        assert (announced["currentNode"], announced["tenant"]) == ("await_payment", "acme")

        command = {"workflowId": run_id, "event": "paid", "payload": {"amount": 7}}
        await connection.jetstream().publish(
            "drift.acme.cmd.event", json.dumps(command).encode(), headers={"Nats-Msg-Id": f"evt-{run_id}"}
        )
        completed = await events.status("COMPLETED")
        assert completed["disposition"] == "paid 7", completed
        statuses = [(event["seq"], event["workflowStatus"]) for event in events.seen]
        assert statuses == [(1, "RUNNING"), (2, "WAITING"), (3, "RUNNING"), (4, "COMPLETED")], statuses
    detail = ok(await gateway.get(f"/v3/workflow/{run_id}"))
    assert detail["context"]["await_payment"] == {"amount": 7}


async def test_scheduler_wait_answers_scheduler_waiting_then_completes(
    platform: Platform, infra: InfraStack, gateway: httpx.AsyncClient
) -> None:
    """A one-second SCHEDULER_WAIT answers SCHEDULER_WAITING on start, then completes on its own."""
    definition_id = await define(
        platform,
        {
            "pause": state({"type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 1}}, "done"),
            "done": success("WOKE"),
        },
        "pause",
    )
    run_id = new_run_id("sched")
    async with _watch(infra.nats_url, run_id) as (_, events):
        started = await start(gateway, definition_id, run_id, params={})
        assert (started["workflowStatus"], started["currentNode"]) == ("SCHEDULER_WAITING", "pause"), started
        completed = await events.status("COMPLETED")
        assert completed["disposition"] == "WOKE"
        # The timer holds the run SCHEDULER_WAITING; it fires on its own and the run goes on to its end.
        statuses = [(event["seq"], event["workflowStatus"]) for event in events.seen]
        assert statuses == [(1, "RUNNING"), (2, "SCHEDULER_WAITING"), (3, "RUNNING"), (4, "COMPLETED")], statuses
    detail = ok(await gateway.get(f"/v3/workflow/{run_id}"))
    assert detail["workflowStatus"] == "COMPLETED"
    assert detail["context"]["pause"] == {"waitedSeconds": 1}


async def test_parallel_branches_both_land_in_the_context(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """PARALLEL runs both branches to their ends; each branch's outputs land in the context before the join."""
    definition_id = await define(
        platform,
        {
            "fan": state({"type": "PARALLEL", "branches": ["left", "right1"]}, "join"),
            "left": script("{% 'L:' & $global.params.x %}", end=True),
            "right1": script("{% $global.params.x & '>' %}", "right2"),
            "right2": script("{% $global.right1 & 'R' %}"),
            "join": success("{% $global.left & '|' & $global.right2 %}"),
        },
        "fan",
    )
    run_id = new_run_id("par")
    finished = await start(gateway, definition_id, run_id, params={"x": "q"})
    assert (finished["workflowStatus"], finished["disposition"]) == ("COMPLETED", "L:q|q>R"), finished
    context = ok(await gateway.get(f"/v3/workflow/{run_id}"))["context"]
    assert (context["left"], context["right1"], context["right2"]) == ("L:q", "q>", "q>R")


async def test_sync_child_final_state_lands_in_the_parent_context(
    platform: Platform, gateway: httpx.AsyncClient
) -> None:
    """A SYNC CHILD runs the child definition to completion; its id, status, disposition and context are the CHILD
    instance's output in the parent's context."""
    child_id = await define(
        platform,
        {
            "double": script("{% $global.params.n * 2 %}", "done"),
            "done": success("{% 'DOUBLED ' & $string($global.double) %}"),
        },
        "double",
    )
    parent_id = await define(
        platform,
        {
            "calc": state(
                {
                    "type": "CHILD",
                    "childWorkflowId": child_id,
                    "executionMode": "SYNC",
                    "params": "{% {'n': $global.params.n} %}",
                },
                "done",
            ),
            "done": success("{% 'parent got ' & $string($global.calc.context.double) %}"),
        },
        "calc",
    )
    run_id = new_run_id("parent")
    finished = await start(gateway, parent_id, run_id, params={"n": 21})
    assert (finished["workflowStatus"], finished["disposition"]) == ("COMPLETED", "parent got 42"), finished
    output = ok(await gateway.get(f"/v3/workflow/{run_id}"))["context"]["calc"]
    assert (output["workflowStatus"], output["disposition"]) == ("COMPLETED", "DOUBLED 42"), output
    assert output["context"]["params"] == {"n": 21}
    assert output["context"]["double"] == 42
    # The child is a run of the same tenant in its own right, readable through the gateway.
    child_run = ok(await gateway.get(f"/v3/workflow/{output['workflowId']}"))
    assert (child_run["workflowStatus"], child_run["disposition"]) == ("COMPLETED", "DOUBLED 42"), child_run


async def test_disconnected_script_runs_against_a_waiting_run_without_moving_it(
    platform: Platform, gateway: httpx.AsyncClient
) -> None:
    """disconnected-node/execute runs a disconnected SCRIPT with the body's parameters over the run's context:
    SUCCESS with its output, FAILURE for an expression error, and the run stays WAITING where it was."""
    definition_id = await define(
        platform,
        {
            "hold": on_event("go", "done"),
            "done": success("DONE"),
            "lookup": state(
                {
                    "type": "SCRIPT",
                    "parameters": ["who", "times"],
                    "output": "{% 'hi ' & $params.who & ' x' & $string($params.times) & ' from ' & "
                    "$global.params.place %}",
                },
                parameters={"who": "{% 'state default' %}", "times": 1},
            ),
            "broken": script("{% $nope($global.params.place) %}"),
        },
        "hold",
    )
    run_id = new_run_id("disc")
    waiting = await start(gateway, definition_id, run_id, params={"place": "Paris"})
    assert waiting["workflowStatus"] == "WAITING", waiting
    path = f"/v3/workflow/{run_id}/disconnected-node/execute"

    own = ok(await gateway.post(path, json={"node": "lookup"}))
    assert own == {"workflowId": run_id, "node": "lookup", "status": "SUCCESS", "response": own["response"]}, own
    assert own["response"] == "hi state default x1 from Paris"
    overridden = ok(await gateway.post(path, json={"node": "lookup", "parameters": {"who": "Ada", "times": 3}}))
    assert (overridden["status"], overridden["response"]) == ("SUCCESS", "hi Ada x3 from Paris"), overridden

    broken = ok(await gateway.post(path, json={"node": "broken", "parameters": {}}))
    assert (broken["workflowId"], broken["node"], broken["status"]) == (run_id, "broken", "FAILURE"), broken
    assert broken["response"]["error"].startswith("output: "), broken

    detail = ok(await gateway.get(f"/v3/workflow/{run_id}"))
    assert (detail["workflowStatus"], detail["currentNode"]) == ("WAITING", "hold"), detail
    assert "lookup" not in detail["context"] and "broken" not in detail["context"]
    finished = ok(await gateway.post(f"/v3/workflow/{run_id}/event/go", json=None))
    assert finished["workflowStatus"] == "COMPLETED", finished


async def test_http_node_to_a_non_allowed_address_is_refused_into_the_failure_path(
    platform: Platform, gateway: httpx.AsyncClient
) -> None:
    """An HTTP node aimed at a non-allowed address is refused by the SSRF guard (no connect) and takes the
    failure path with a message naming the refusal."""
    # Precondition, so that a regressed guard fails here instead of letting the worker send a packet off loopback:
    # the guard the worker builds from the same allow list refuses the URL (vet does no I/O for an IP literal).
    assert "127.0.0.2" not in parse_hosts(platform.config.http_allow_hosts)
    with pytest.raises(SsrfRefused, match="non-public address"):
        await Guard(parse_hosts(platform.config.http_allow_hosts)).vet(REFUSED_URL)
    definition_id = await define(
        platform,
        {
            "fetch": state(
                {
                    "type": "HTTP",
                    "request": {"method": "GET", "url": REFUSED_URL},
                    "retry": {"maxAttempts": 3, "initialIntervalMs": 100},
                },
                "done",
            ),
            "done": success("FETCHED"),
            "refused": success("{% 'REFUSED ' & $global.lastError.message %}"),
        },
        "fetch",
        defaultFailureNode="refused",
    )
    run_id = new_run_id("ssrf")
    finished = await start(gateway, definition_id, run_id, params={})
    assert finished["workflowStatus"] == "COMPLETED", finished
    assert finished["disposition"] == ("REFUSED '127.0.0.2' resolves to a non-public address (127.0.0.2)"), finished
    timeline = ok(await gateway.get(f"/v3/workflow/{run_id}/timeline"))["nodes"]
    fetch = [entry for entry in timeline if entry["instanceName"] == "fetch"]
    # A refusal is final: one failed attempt, no retries against the forbidden address.
    assert [(entry["status"], entry["attempt"]) for entry in fetch] == [("FAILED", 1)], fetch
    assert "non-public address" in str(fetch[0]["error"])
