"""Retry from the failed node (contract 8.2) on the whole stack: completed nodes are not executed again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from drift_cli.platform import Platform
from e2e.definitions import define, failure, http, last_event, ok, on_event, run_id, script, start, state, success
from e2e.receiver import Receiver
from e2e.stub_api import StubApi

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def api() -> AsyncIterator[StubApi]:
    """A loopback API whose routes each test scripts; `calls` counts what the runs really sent."""
    stub = await StubApi().start()
    yield stub
    await stub.close()


class Flaky:
    """A route failing with 503 until `healthy` is set."""

    def __init__(self, answer: Any) -> None:
        self.healthy = False
        self.answer = answer

    def __call__(self, _: Any) -> tuple[int, Any]:
        return (200, self.answer) if self.healthy else (503, {"error": "down"})


def _calls(api: StubApi, path: str) -> int:
    return sum(1 for call in api.calls if call.path == path)


async def _failed_run(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi, prefix: str
) -> tuple[str, str, Flaky]:
    """A run that called /{prefix}/a, then failed at `charge` (/{prefix}/b answering 503) and its failure path."""
    charge = Flaky({"receipt": "r-1"})
    api.routes[("POST", f"/{prefix}/a")] = lambda _: (200, {"order": "o-1"})
    api.routes[("POST", f"/{prefix}/b")] = charge
    states = {
        "reserve": http(f"{api.url}/{prefix}/a", "note"),
        "note": script("{% 'reserved ' & $global.reserve.order %}", "charge"),
        "charge": http(f"{api.url}/{prefix}/b", "done"),
        "done": success("{% $global.note & ', ' & $global.charge.receipt %}"),
        "report": script("{% 'failed at ' & $global.lastError.node %}", "stop"),
        "stop": failure("{% $global.lastError.message %}"),
    }
    definition_id = await define(platform, states, "reserve", defaultFailureNode="report")
    workflow_id = run_id(prefix)
    failed = await start(gateway, definition_id, workflow_id)
    assert failed["workflowStatus"] == "FAILED", failed
    assert (_calls(api, f"/{prefix}/a"), _calls(api, f"/{prefix}/b")) == (1, 1)
    return definition_id, workflow_id, charge


async def test_retry_runs_from_the_failed_node_without_repeating_completed_ones(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """A run that ended on its failure path is retried from the failed node: /a is not called again, same id."""
    _, workflow_id, charge = await _failed_run(platform, gateway, api, "once")
    before = await last_event(platform, "workflow", workflow_id)
    assert before is not None and before["workflowStatus"] == "FAILED"
    charge.healthy = True
    retried = ok(await gateway.put(f"/v3/workflow/retry/{workflow_id}", json={}))
    assert retried["workflowId"] == workflow_id
    assert retried["workflowStatus"] == "COMPLETED", retried
    assert retried["disposition"] == "reserved o-1, r-1"
    assert (_calls(api, "/once/a"), _calls(api, "/once/b")) == (1, 2)
    detail = ok(await gateway.get(f"/v3/workflow/{workflow_id}"))
    assert detail["workflowStatus"] == "COMPLETED"
    # $global as it was before `charge`: the failure path's outputs and lastError are gone.
    assert "report" not in detail["context"] and "lastError" not in detail["context"]
    after = await last_event(platform, "workflow", workflow_id)
    assert after is not None and after["seq"] > before["seq"]
    # A COMPLETED run is not retried, and the refusal changes nothing.
    again = await gateway.put(f"/v3/workflow/retry/{workflow_id}", json={})
    assert again.status_code == 409, again.text
    assert ok(await gateway.get(f"/v3/workflow/{workflow_id}"))["workflowStatus"] == "COMPLETED"


async def test_retry_from_an_earlier_node_runs_it_again(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """`fromNode` names where to start: that node and the ones after it run again, with $global from before it."""
    _, workflow_id, charge = await _failed_run(platform, gateway, api, "early")
    charge.healthy = True
    retried = ok(await gateway.put(f"/v3/workflow/retry/{workflow_id}", json={"fromNode": "reserve"}))
    assert retried["workflowStatus"] == "COMPLETED", retried
    assert (_calls(api, "/early/a"), _calls(api, "/early/b")) == (2, 2)


async def test_unknown_from_node_is_422_and_changes_nothing(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """An unknown fromNode answers 422 with the pointer /fromNode; the run stays FAILED."""
    _, workflow_id, _ = await _failed_run(platform, gateway, api, "unknown")
    refused = await gateway.put(f"/v3/workflow/retry/{workflow_id}", json={"fromNode": "nowhere"})
    assert refused.status_code == 422, refused.text
    assert [error["pointer"] for error in refused.json()["errors"]] == ["/fromNode"]
    assert ok(await gateway.get(f"/v3/workflow/{workflow_id}"))["workflowStatus"] == "FAILED"
    assert (_calls(api, "/unknown/a"), _calls(api, "/unknown/b")) == (1, 1)


async def test_running_runs_are_not_retried_and_other_tenants_runs_do_not_exist(
    platform: Platform, gateway: httpx.AsyncClient, globex: httpx.AsyncClient, api: StubApi
) -> None:
    """A WAITING run answers 409 and stays WAITING; another tenant's failed run answers 404; an unknown run 404."""
    definition_id = await define(platform, {"wait": on_event("go", "done"), "done": success("ok")}, "wait")
    workflow_id = run_id("waiting")
    assert (await start(gateway, definition_id, workflow_id))["workflowStatus"] == "WAITING"
    refused = await gateway.put(f"/v3/workflow/retry/{workflow_id}", json={})
    assert refused.status_code == 409, refused.text
    assert ok(await gateway.get(f"/v3/workflow/{workflow_id}"))["workflowStatus"] == "WAITING"
    _, failed_id, charge = await _failed_run(platform, gateway, api, "foreign")
    charge.healthy = True
    assert (await globex.put(f"/v3/workflow/retry/{failed_id}", json={})).status_code == 404
    assert (await gateway.put(f"/v3/workflow/retry/{run_id('nobody')}", json={})).status_code == 404
    assert ok(await gateway.get(f"/v3/workflow/{failed_id}"))["workflowStatus"] == "FAILED"
    assert _calls(api, "/foreign/b") == 1


async def test_a_terminated_run_is_retried_from_the_node_it_was_at(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """A run terminated while WAITING comes back WAITING at that node (earlier nodes not re-run) and then completes."""
    api.routes[("POST", "/term/a")] = lambda _: (200, {"n": 1})
    states = {
        "fetch": http(f"{api.url}/term/a", "wait"),
        "wait": on_event("go", "done"),
        "done": success("{% 'got ' & $string($global.fetch.n) & ' ' & $global.wait.word %}"),
    }
    definition_id = await define(platform, states, "fetch")
    workflow_id = run_id("term")
    assert (await start(gateway, definition_id, workflow_id))["workflowStatus"] == "WAITING"
    ok(await gateway.delete(f"/v3/workflow/terminate/{workflow_id}"))
    retried = ok(await gateway.put(f"/v3/workflow/retry/{workflow_id}", json={}))
    assert retried["workflowStatus"] == "WAITING" and retried["currentNode"] == "wait", retried
    done = ok(await gateway.post(f"/v3/workflow/{workflow_id}/event/go", json={"word": "yes"}))
    assert done["workflowStatus"] == "COMPLETED" and done["disposition"] == "got 1 yes"
    assert _calls(api, "/term/a") == 1


async def test_of_concurrent_retries_exactly_one_runs(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """Several retries at once: one runs the failed node again, the others answer 409; the node runs once more only."""
    _, workflow_id, charge = await _failed_run(platform, gateway, api, "race")
    charge.healthy = True
    answers = await asyncio.gather(*(gateway.put(f"/v3/workflow/retry/{workflow_id}", json={}) for _ in range(4)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 409, 409, 409], [answer.text for answer in answers]
    assert _calls(api, "/race/b") == 2 and _calls(api, "/race/a") == 1


async def test_a_failed_parallel_node_reruns_only_its_failed_branch(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """Retrying a failed PARALLEL node keeps the completed branch (its output too) and runs the failed one again."""
    flaky = Flaky({"b": 2})
    api.routes[("POST", "/par/a")] = lambda _: (200, {"a": 1})
    api.routes[("POST", "/par/b")] = flaky
    states = {
        "both": state({"type": "PARALLEL", "branches": ["left", "right"]}, "done"),
        "left": http(f"{api.url}/par/a"),
        "right": http(f"{api.url}/par/b"),
        "done": success("{% $string($global.left.a) & $string($global.right.b) %}"),
    }
    definition_id = await define(platform, states, "both")
    workflow_id = run_id("par")
    failed = await start(gateway, definition_id, workflow_id)
    assert failed["workflowStatus"] == "FAILED", failed
    assert _calls(api, "/par/a") == 1
    flaky.healthy = True
    retried = ok(await gateway.put(f"/v3/workflow/retry/{workflow_id}", json={}))
    assert retried["workflowStatus"] == "COMPLETED" and retried["disposition"] == "12", retried
    assert (_calls(api, "/par/a"), _calls(api, "/par/b")) == (1, 2)


async def test_an_async_retry_answers_202_and_posts_the_outcome_to_its_callback(
    platform: Platform, gateway: httpx.AsyncClient, api: StubApi
) -> None:
    """With callbackUrl a retry answers 202 at once and the retried run's COMPLETED state arrives as a webhook."""
    _, workflow_id, charge = await _failed_run(platform, gateway, api, "hook")
    charge.healthy = True
    receiver = await Receiver().start()
    try:
        accepted = await gateway.put(f"/v3/workflow/retry/{workflow_id}", json={"callbackUrl": receiver.hook_url})
        assert accepted.status_code == 202, accepted.text
        [delivery] = await receiver.wait_for(1)
        body = json.loads(delivery.body)
        assert body["workflowId"] == workflow_id and body["workflowStatus"] == "COMPLETED", body
        assert delivery.headers.get("webhook-signature", "").startswith("v1,")
    finally:
        await receiver.close()
    assert _calls(api, "/hook/a") == 1
