"""Test runs (contract 8.3) on the whole stack: mocks instead of the outside world, answered at the run's end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from drift_cli.platform import Platform
from e2e.definitions import (
    define,
    definition,
    failure,
    http,
    last_event,
    ok,
    run_id,
    script,
    start,
    state,
    success,
)
from e2e.receiver import Receiver
from e2e.stub_api import StubApi

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIST_DEADLINE_S = 15.0


@pytest_asyncio.fixture(loop_scope="session")
async def api() -> AsyncIterator[StubApi]:
    """A loopback API answering 200 to anything it is asked: a test run must never ask."""
    async with StubApi() as stub:
        stub.routes[("POST", "/orders")] = lambda _: (200, {"id": "real"})
        yield stub


async def _tested(gateway: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v3/workflow/test with `body`; it must succeed. Answers the test run's result."""
    answer: dict[str, Any] = ok(await gateway.post("/v3/workflow/test", json=body))
    return answer


def _order_flow(api: StubApi) -> dict[str, object]:
    return {
        "fetch": http(f"{api.url}/orders", "price", output="{% $response.body.total * 2 %}"),
        "price": script("{% $global.fetch + 1 %}", "done"),
        "done": success("{% 'TOTAL ' & $string($global.price) %}"),
    }


async def test_mocked_http_answer_runs_through_output_and_calls_nothing(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """A `response` mock goes through the node's output expression; the API is never called; the trace is in order."""
    definition_id = await define(platform, _order_flow(api), "fetch")
    answer = await _tested(
        gateway,
        {
            "workflow": {"id": definition_id, "version": "1"},
            "params": {"orderId": "o-1"},
            "mocks": {"fetch": {"response": {"status": 200, "body": {"total": 20}}}},
        },
    )
    assert answer["workflowStatus"] == "COMPLETED", answer
    assert answer["disposition"] == "TOTAL 41"
    assert answer["context"]["fetch"] == 40 and answer["context"]["params"] == {"orderId": "o-1"}
    assert [(entry["instanceName"], entry["status"]) for entry in answer["trace"]] == [
        ("fetch", "COMPLETED"),
        ("price", "COMPLETED"),
        ("done", "COMPLETED"),
    ]
    assert answer["trace"][0]["nodeType"] == "HTTP" and answer["trace"][1]["output"] == 41
    assert api.calls == []


async def test_unmocked_http_node_fails_clearly_without_calling_out(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """An HTTP node without a mock fails the test run with a message naming it, and no request leaves."""
    body = {"definition": definition(_order_flow(api), "fetch")}
    answer = await _tested(gateway, body)
    assert answer["workflowStatus"] == "FAILED"
    assert "'fetch' has no mock" in answer["errorMessage"]
    assert answer["trace"] == [
        {
            "instanceName": "fetch",
            "nodeType": "HTTP",
            "status": "FAILED",
            "output": None,
            "error": answer["errorMessage"],
        }
    ]
    assert api.calls == []


async def test_mocked_errors_and_non_2xx_answers_fail_the_node(gateway: httpx.AsyncClient, api: StubApi) -> None:
    """`error` fails its node (the failure path runs); a mocked 503 fails an HTTP node by its 2xx rule."""
    states = {
        **_order_flow(api),
        "report": script("{% 'failed at ' & $global.lastError.node %}", "stop"),
        "stop": failure("{% $global.lastError.message %}"),
    }
    inline = definition(states, "fetch", defaultFailureNode="report")
    erred = await _tested(
        gateway, {"definition": inline, "mocks": {"fetch": {"output": 1}, "price": {"error": "pricing is down"}}}
    )
    assert erred["workflowStatus"] == "FAILED" and erred["errorMessage"] == "pricing is down"
    assert [entry["instanceName"] for entry in erred["trace"]] == ["fetch", "price", "report", "stop"]
    assert erred["context"]["report"] == "failed at price"
    refused = await _tested(
        gateway, {"definition": inline, "mocks": {"fetch": {"response": {"status": 503, "body": "busy"}}}}
    )
    assert refused["workflowStatus"] == "FAILED"
    assert refused["trace"][0]["error"] == f"POST {api.url}/orders answered HTTP 503 (mocked)"
    assert api.calls == []


async def test_selections_events_and_timers_are_answered_at_once(gateway: httpx.AsyncClient) -> None:
    """An INSTRUCTION gets the request's selections, ON_EVENT its events, and a one-hour WAIT fires at once."""
    view = {"inputOptions": [{"id": "decision", "possibleValues": [{"value": "YES"}, {"value": "NO"}]}]}
    states = {
        "ask": state({"type": "INSTRUCTION", "view": view}, "nap"),
        "nap": state({"type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 3600}}, "paid"),
        "paid": state({"type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "payment"}}, "done"),
        "done": success("{% $global.ask.selectedOptions.decision & ' ' & $string($global.paid.amount) %}"),
    }
    began = time.monotonic()
    answer = await _tested(
        gateway,
        {
            "definition": definition(states, "ask"),
            "selections": {"ask": {"decision": "YES"}},
            "events": {"payment": {"amount": 12}},
        },
    )
    assert answer["workflowStatus"] == "COMPLETED" and answer["disposition"] == "YES 12", answer
    assert [entry["instanceName"] for entry in answer["trace"]] == ["ask", "nap", "paid", "done"]
    assert time.monotonic() - began < 60  # the hour-long timer did not hold the run
    invalid = await _tested(
        gateway, {"definition": definition(states, "ask"), "selections": {"ask": {"decision": "MAYBE"}}}
    )
    assert invalid["workflowStatus"] == "FAILED" and "'MAYBE' is not a possible value" in invalid["errorMessage"]


async def test_a_test_run_is_silent_unlisted_and_sends_no_webhook(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """A test run publishes no event (so no webhook and no stored state) and never appears in GET /v3/workflows."""
    async with Receiver() as receiver:
        definition_id = await define(platform, _order_flow(api), "fetch")
        answer = await _tested(
            gateway,
            {
                "workflow": {"id": definition_id, "version": "1"},
                "callbackUrl": receiver.hook_url,
                "mocks": {"fetch": {"output": 1}},
            },
        )
        test_id = answer["workflowId"]
        assert answer["workflowStatus"] == "COMPLETED" and test_id.startswith("test-")
        assert await last_event(platform, "workflow", test_id) is None
        assert await last_event(platform, "node", test_id) is None
        # An ordinary run of the same definition, started after the test run, is listed: once it is, the test run
        # would be too, were it ever to be.
        real_id = run_id("listed")
        api.routes[("POST", "/orders")] = lambda _: (200, {"total": 1})
        await start(gateway, definition_id, real_id)
        deadline = time.monotonic() + LIST_DEADLINE_S
        while True:
            listed = ok(await gateway.get("/v3/workflows", params={"definitionId": definition_id}))
            ids = {run["workflowId"] for run in listed["runs"]}
            if real_id in ids or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert real_id in ids and test_id not in ids
        assert receiver.requests == []


async def test_bad_test_requests_answer_problems_with_pointers(
    platform: Platform, gateway: httpx.AsyncClient, globex: httpx.AsyncClient, api: StubApi
) -> None:
    """Unknown instances in mocks or selections, both or neither of workflow and definition: 422 with pointers."""
    flow = _order_flow(api)
    inline = definition(flow, "fetch")
    unknown = await gateway.post(
        "/v3/workflow/test", json={"definition": inline, "mocks": {"nope": {"output": 1}, "fetch": {}}}
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert {error["pointer"] for error in unknown.json()["errors"]} == {"/mocks/nope", "/mocks/fetch"}
    wrong_kind = await gateway.post(
        "/v3/workflow/test",
        json={"definition": inline, "mocks": {"price": {"response": {"status": 200}}}, "selections": {"done": {}}},
    )
    assert {error["pointer"] for error in wrong_kind.json()["errors"]} == {"/mocks/price/response", "/selections/done"}
    both = await gateway.post("/v3/workflow/test", json={"definition": inline, "workflow": {"id": "x"}})
    assert both.status_code == 422
    dangling = dict(inline, states={**flow, "price": script("{% 1 %}", "nowhere")})
    broken = await gateway.post("/v3/workflow/test", json={"definition": dangling})
    assert broken.status_code == 422
    assert "/definition/states/price/nextNode" in {error["pointer"] for error in broken.json()["errors"]}
    # Another tenant's stored definition does not exist for the caller.
    definition_id = await define(platform, flow, "fetch")
    foreign = await globex.post("/v3/workflow/test", json={"workflow": {"id": definition_id, "version": "1"}})
    assert foreign.status_code == 404
    assert api.calls == []


async def test_stored_and_referenced_nodes_run_as_published(gateway: httpx.AsyncClient) -> None:
    """Stored workflows and inline definitions with referenced nodes run; an unknown node is a 422 at its resourceId."""
    stored = await _tested(
        gateway,
        {
            "workflow": {"id": "hello_approval"},
            "params": {"name": "Ada"},
            "selections": {"ask_approval": {"decision": "APPROVE"}},
        },
    )
    assert stored["workflowStatus"] == "COMPLETED" and stored["disposition"] == "APPROVED: Hello, Ada!", stored
    assert [entry["instanceName"] for entry in stored["trace"]] == [
        "greet",
        "ask_approval",
        "route_decision",
        "approved",
    ]
    states = {
        "greet": {"resourceId": "greet", "parameters": {"who": "Bob"}, "nextNode": "approved"},
        "approved": {"resourceId": "done", "end": True},
    }
    inline = await _tested(gateway, {"definition": definition(states, "greet")})
    assert inline["disposition"] == "APPROVED: Hello, Bob!", inline
    missing = dict(states, greet={"resourceId": "no_such_node", "nextNode": "approved"})
    refused = await gateway.post("/v3/workflow/test", json={"definition": definition(missing, "greet")})
    assert refused.status_code == 422
    assert [error["pointer"] for error in refused.json()["errors"]] == ["/definition/states/greet/resourceId"]


async def test_a_child_of_a_test_run_is_a_test_run(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """A SYNC CHILD started by a test run gets the mocks too (its HTTP node calls nothing) and publishes nothing."""
    child_id = await define(
        platform, {"lookup": http(f"{api.url}/orders", "ok"), "ok": success("{% $global.lookup.id %}")}, "lookup"
    )
    parent = {
        "call": state(
            {"type": "CHILD", "childWorkflowId": child_id, "childWorkflowVersion": "1", "executionMode": "SYNC"},
            "done",
        ),
        "done": success("{% $global.call.disposition %}"),
    }
    answer = await _tested(
        gateway, {"definition": definition(parent, "call"), "mocks": {"lookup": {"output": {"id": "mocked"}}}}
    )
    assert answer["workflowStatus"] == "COMPLETED" and answer["disposition"] == "mocked", answer
    child_run = answer["context"]["call"]["workflowId"]
    assert child_run.startswith("test-")
    assert await last_event(platform, "workflow", child_run) is None
    assert api.calls == []


async def test_a_long_test_run_keeps_its_trace_across_continue_as_new(gateway: httpx.AsyncClient) -> None:
    """A loop of 601 visits (past the run's continue-as-new point) answers with every visit in its trace."""
    states = {
        "count": script("{% ($global.count ? $global.count : 0) + 1 %}", "again"),
        "again": state(
            {
                "type": "BRANCH",
                "choices": [{"rule": "{% $global.count < 300 %}", "nextNode": "count"}],
                "defaultNode": "done",
            }
        ),
        "done": success("{% $global.count %}"),
    }
    answer = await _tested(gateway, {"definition": definition(states, "count")})
    assert answer["workflowStatus"] == "COMPLETED" and answer["disposition"] == 300, answer["errorMessage"]
    trace = answer["trace"]
    assert len(trace) == 601 and answer.get("traceOmitted", 0) == 0
    assert [entry["output"] for entry in trace if entry["instanceName"] == "count"] == list(range(1, 301))
    assert trace[-1]["instanceName"] == "done"
