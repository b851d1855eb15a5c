"""The HTTP edges under attack: ids checked exactly, no 5xx for bad input, header and drawing limits,
truthful answers, per-tenant fairness at the gateway, and no way from a tenant's HTTP node to Drift itself.

Each test is one row of the hostile-tenant report, run on the suite's own platform by `mallory`;
the fairness tests also keep the victim `globex` completing ordinary runs while the attack runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from support.served import served

from drift_cli.platform import Platform
from drift_gateway.app import create_app
from drift_gateway.config import Settings
from drift_gateway.limits import TenantLimits
from drift_runtime.auth import ApiKeys
from hostile.support import KEYS, SERVICE_TOKEN, Hanging, VictimCheck, bearer, define, inline

pytestmark = pytest.mark.asyncio(loop_scope="session")

NEWLINE_ID = "edge-run\n"
"""An id Python's `$` accepts: the pattern matched before the final newline."""
BAD_BODIES = {
    "invalid UTF-8": b'{"workflow": {"id": "ordinary"}, "params": "\xff\xfe"}',
    "1e999": b'{"workflow": {"id": "ordinary"}, "params": {"x": 1e999}}',
    "a 5,000-digit number": b'{"workflow": {"id": "ordinary"}, "params": {"x": ' + b"9" * 5000 + b"}}",
    "deep nesting": b'{"workflow": {"id": "ordinary"}, "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}
JSON = {"Content-Type": "application/json"}


def _problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.request.method, response.request.url, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code and body["title"], body
    return body


def _pointers(body: dict[str, Any]) -> list[str]:
    return [error["pointer"] for error in body.get("errors") or []]


# -- ids ------------------------------------------------------------------------------------------


async def test_ids_ending_in_a_newline_are_refused_in_every_gateway_field(attacker: httpx.AsyncClient) -> None:
    """`workflowId` and `workflow.id` with a final newline answer 422 with their pointer; nothing starts."""
    start = await attacker.post("/v3/workflow/start", json={"workflow": {"id": "ordinary"}, "workflowId": NEWLINE_ID})
    assert _pointers(_problem(start, 422)) == ["/workflowId"]
    definition = await attacker.post("/v3/workflow/start", json={"workflow": {"id": "ordinary\n"}})
    assert _pointers(_problem(definition, 422)) == ["/workflow/id"]
    # The run id was never used: no run exists under its newline-free prefix either.
    _problem(await attacker.get("/v3/workflow/edge-run"), 404)


async def test_ids_ending_in_a_newline_in_gateway_paths_answer_404(attacker: httpx.AsyncClient) -> None:
    """Every gateway route with a workflowId (or event name) in its path answers 404 for one ending in a newline."""
    encoded = "edge-run%0A"
    routes = [
        ("GET", f"/v3/workflow/{encoded}", None),
        ("GET", f"/v3/workflow/{encoded}/timeline", None),
        ("PUT", f"/v3/workflow/resume/{encoded}", {"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}}),
        ("DELETE", f"/v3/workflow/terminate/{encoded}", None),
        ("POST", f"/v3/workflow/{encoded}/event/go", {}),
        ("POST", "/v3/workflow/edge-run/event/go%0A", {}),
        ("POST", f"/v3/workflow/{encoded}/disconnected-node/execute", {"node": "x"}),
    ]
    for method, path, body in routes:
        response = await attacker.request(method, path, json=body)
        _problem(response, 404)


async def test_definition_ids_ending_in_a_newline_are_refused_by_the_dsl_store(
    attacker_store: httpx.AsyncClient,
) -> None:
    """Definition ids with a final newline answer 422 at /id, nothing is stored, and reads answer 404."""
    node = await attacker_store.post("/nodeDefinition", json={"id": "edge_node\n", "type": "SCRIPT", "output": 1})
    assert _pointers(_problem(node, 422)) == ["/id"]
    workflow = await attacker_store.post(
        "/workflowDefinition",
        json={"id": "edge_flow\n", "startNode": "a", "states": {"a": inline({"type": "SUCCESS"})}},
    )
    assert _pointers(_problem(workflow, 422)) == ["/id"]
    for path in ("/nodeDefinition/edge_node%0A", "/workflowDefinition/edge_flow%0A", "/workflowDefinition/edge_flow"):
        _problem(await attacker_store.get(path, params={"version": "SNAPSHOT"}), 404)


async def test_enum_keys_ending_in_a_newline_are_refused(attacker_store: httpx.AsyncClient) -> None:
    """An enum key (a NATS subject token of its change events) with a final newline answers 422; reads answer 404."""
    stored = await attacker_store.put("/enums/edge_key%0A", json={"a": 1})
    _problem(stored, 422)
    _problem(await attacker_store.get("/enums/edge_key%0A"), 404)
    _problem(await attacker_store.get("/enums/edge_key"), 404)


# -- no 5xx for bad input -------------------------------------------------------------------------


async def test_bad_bodies_never_answer_5xx_on_gateway_routes(attacker: httpx.AsyncClient) -> None:
    """Invalid UTF-8, 1e999, a 5,000-digit number and deep nesting answer 4xx problem+json on every body route."""
    routes = [
        ("POST", "/v3/workflow/start"),
        ("PUT", "/v3/workflow/resume/edge-unknown"),
        ("POST", "/v3/workflow/edge-unknown/event/go"),
        ("POST", "/v3/workflow/edge-unknown/disconnected-node/execute"),
    ]
    for method, path in routes:
        for name, body in BAD_BODIES.items():
            response = await attacker.request(method, path, content=body, headers=JSON)
            assert response.status_code < 500, (path, name, response.text[:200])
            _problem(response, 400, 404, 422)


async def test_deeply_nested_bodies_are_refused_at_the_gateway_before_anything_runs(
    attacker: httpx.AsyncClient,
) -> None:
    """A body nested 3,000 levels deep (which the JSON parser still reads) is a 422 at the edge; no run starts."""
    run_id = f"edge-deep-{uuid.uuid4().hex[:8]}"
    deep = b"[" * 3000 + b"]" * 3000
    start = b'{"workflow": {"id": "ordinary"}, "workflowId": "' + run_id.encode() + b'", "params": ' + deep + b"}"
    answer = await attacker.post("/v3/workflow/start", content=start, headers=JSON)
    assert "levels deep" in _problem(answer, 422)["errors"][0]["message"]
    event = await attacker.post(f"/v3/workflow/{run_id}/event/go", content=deep, headers=JSON)
    assert "levels deep" in _problem(event, 422)["errors"][0]["message"]
    _problem(await attacker.get(f"/v3/workflow/{run_id}"), 404)


async def test_bad_bodies_and_versions_never_answer_5xx_on_the_dsl_store(attacker_store: httpx.AsyncClient) -> None:
    """Bad definition bodies answer 422 problem+json; a 5,000-digit or non-ASCII `?version=` answers 4xx, never 500."""
    for kind in ("nodeDefinition", "workflowDefinition"):
        for method in ("POST", "PUT"):
            for name, body in BAD_BODIES.items():
                response = await attacker_store.request(method, f"/{kind}", content=body, headers=JSON)
                assert response.status_code < 500, (kind, method, name, response.text[:200])
                _problem(response, 400, 422)
    for version in ("9" * 5000, "\u00b2", "1" * 19):
        for path in (
            "/nodeDefinition/ordinary_sum",
            "/workflowDefinition/ordinary",
            "/workflowDefinition/treeView/ordinary",
            "/workflowDefinition/ordinary/activate",
        ):
            method = "POST" if path.endswith("activate") else "GET"
            response = await attacker_store.request(method, path, params={"version": version})
            _problem(response, 400, 404, 422)


# -- header limits ---------------------------------------------------------------------------------


async def test_oversized_headers_answer_431_and_never_reach_thread_context(
    hostile_platform: Platform, attacker: httpx.AsyncClient
) -> None:
    """A 50 MB Authorization and a 900 KB X-User-Id answer 431 problem+json; an X-User-Id within the limit is kept."""
    async with httpx.AsyncClient(base_url=hostile_platform.gateway_url, timeout=120) as raw:
        huge = await raw.get("/v3/workflow/anything", headers={"Authorization": "Bearer " + "k" * 50_000_000})
        _problem(huge, 431)
    big_user = await attacker.post(
        "/v3/workflow/start", json={"workflow": {"id": "ordinary"}}, headers={"X-User-Id": "u" * 900_000}
    )
    _problem(big_user, 431)
    over_cap = await attacker.post(
        "/v3/workflow/start", json={"workflow": {"id": "ordinary"}}, headers={"X-User-Id": "u" * 257}
    )
    assert "X-User-Id" in _problem(over_cap, 431)["detail"]
    run_id = f"edge-{uuid.uuid4().hex[:12]}"
    kept = await attacker.post(
        "/v3/workflow/start",
        json={"workflow": {"id": "ordinary"}, "workflowId": run_id, "params": {"values": [1]}},
        headers={"X-User-Id": "u" * 256},
    )
    assert kept.status_code == 200, kept.text
    detail = (await attacker.get(f"/v3/workflow/{run_id}")).json()
    assert detail["context"]["threadContext"]["userId"] == "u" * 256


# -- tree view -------------------------------------------------------------------------------------


async def test_png_of_a_ten_thousand_state_definition_is_refused_with_a_pointer(
    attacker_store: httpx.AsyncClient,
) -> None:
    """A 10,001-state workflow draws as mermaid, while png and svg answer 422 at /states without drawing."""
    count = 10_001
    states = {
        f"s{i}": {"nodeDefinition": {"id": "n", "type": "SCRIPT", "output": 1}, "nextNode": f"s{i + 1}"}
        for i in range(count - 1)
    }
    states[f"s{count - 1}"] = {"nodeDefinition": {"id": "n", "type": "SUCCESS"}, "end": True}
    definition_id = f"edges_big_{uuid.uuid4().hex[:8]}"
    created = await attacker_store.post(
        "/workflowDefinition", json={"id": definition_id, "startNode": "s0", "states": states}
    )
    assert created.status_code == 201, created.text[:300]
    for drawing in ("png", "svg"):
        refused = await attacker_store.get(
            f"/workflowDefinition/treeView/{definition_id}", params={"version": "SNAPSHOT", "format": drawing}
        )
        body = _problem(refused, 422)
        assert _pointers(body) == ["/states"] and "mermaid" in body["errors"][0]["message"], body
    text = await attacker_store.get(
        f"/workflowDefinition/treeView/{definition_id}", params={"version": "SNAPSHOT", "format": "mermaid"}
    )
    assert text.status_code == 200 and "s10000" in text.text


# -- answers that say what is true -----------------------------------------------------------------


async def test_an_empty_selection_is_refused_with_a_pointer_and_the_run_stays_waiting(
    attacker: httpx.AsyncClient,
) -> None:
    """`selectedOptions: {}` answers 422 at /viewResponse/selectedOptions; the run is still WAITING."""
    run_id = f"edge-{uuid.uuid4().hex[:12]}"
    started = await attacker.post(
        "/v3/workflow/start", json={"workflow": {"id": "hello_approval"}, "workflowId": run_id, "params": {"name": "M"}}
    )
    assert (started.status_code, started.json()["workflowStatus"]) == (200, "WAITING"), started.text
    empty = await attacker.put(f"/v3/workflow/resume/{run_id}", json={"viewResponse": {"selectedOptions": {}}})
    assert _pointers(_problem(empty, 422)) == ["/viewResponse/selectedOptions"]
    assert (await attacker.get(f"/v3/workflow/{run_id}")).json()["workflowStatus"] == "WAITING"


async def test_resume_and_event_of_an_unknown_run_answer_404(attacker: httpx.AsyncClient) -> None:
    """A resume or event for a run that does not exist answers 404 problem+json (not 202 CREATED)."""
    run_id = f"edge-missing-{uuid.uuid4().hex[:8]}"
    resume = await attacker.put(
        f"/v3/workflow/resume/{run_id}", json={"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}}
    )
    _problem(resume, 404)
    _problem(await attacker.post(f"/v3/workflow/{run_id}/event/go", json={}), 404)


# -- a tenant's HTTP node never reaches Drift's own servers -----------------------------------------


async def test_http_nodes_cannot_reach_the_temporal_ui_or_drifts_servers_on_loopback(
    hostile_platform: Platform, attacker: httpx.AsyncClient, attacker_store: httpx.AsyncClient
) -> None:
    """With the dev allow-list (loopback allowed), an HTTP node aimed at the Temporal UI's API, the gateway or
    Redis is refused by the guard: the node fails and the run takes its failure path, reading nothing."""
    ui = hostile_platform.temporal_ui_url
    assert ui is not None
    targets = {
        "temporal-ui": f"{ui}/api/v1/namespaces/default/workflows",
        "gateway": f"{hostile_platform.gateway_url}/health/live",
        "redis": hostile_platform.infra.redis_url.replace("redis://", "http://").rsplit("/", 1)[0] + "/",
    }
    for name, url in targets.items():
        definition_id = await define(
            attacker_store,
            {
                "fetch": inline({"type": "HTTP", "request": {"method": "GET", "url": url}}, "done"),
                "done": inline({"type": "SUCCESS", "disposition": "READ"}),
            },
            "fetch",
            prefix="edges",
        )
        run_id = f"edge-ssrf-{name}-{uuid.uuid4().hex[:8]}"
        answer = await attacker.post(
            "/v3/workflow/start", json={"workflow": {"id": definition_id}, "workflowId": run_id}
        )
        assert answer.status_code == 200, answer.text
        finished = answer.json()
        assert finished["workflowStatus"] == "FAILED", (name, finished)
        assert "Drift's own servers" in (finished["errorMessage"] or ""), (name, finished)


# -- fairness --------------------------------------------------------------------------------------


MALLORY_LIMITS = TenantLimits(starts_per_second=0.5, starts_burst=4, sync_waiters=3)


@pytest_asyncio.fixture(loop_scope="session")
async def limited_gateway(hostile_platform: Platform) -> AsyncIterator[str]:
    """A second gateway on the suite's platform whose limits for mallory are tiny (globex keeps the defaults)."""
    infra = hostile_platform.infra
    settings = Settings(
        port=0,
        bind_host="127.0.0.1",
        nats_url=infra.nats_url,
        redis_url=infra.redis_url,
        temporal_address=infra.temporal_address,
        temporal_namespace="default",
        task_queue="drift",
        api_keys=ApiKeys(KEYS),
        log_format="json",
        log_level="INFO",
        stream_replicas=1,
        http_allow_hosts=("127.0.0.1",),
        dsl_store_url=hostile_platform.dsl_store_url,
        service_token=SERVICE_TOKEN,
        tenant_limits={"mallory": MALLORY_LIMITS},
    )
    async with served(create_app(settings)) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def mallory(limited_gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    """The limited gateway as mallory."""
    async with httpx.AsyncClient(base_url=limited_gateway, headers=bearer("key-mallory"), timeout=60) as client:
        yield client


class TestFairness:
    """Mallory over its limits on one gateway; globex, on the same gateway, is never held back."""

    @pytest_asyncio.fixture(loop_scope="session")
    async def victim(self, limited_gateway: str) -> AsyncIterator[httpx.AsyncClient]:
        """The victim on the limited gateway (overrides the suite's, so victim_keeps_completing uses it)."""
        async with httpx.AsyncClient(base_url=limited_gateway, headers=bearer("key-globex"), timeout=60) as client:
            yield client

    async def test_starts_past_the_tenants_rate_answer_429_with_retry_after(
        self, mallory: httpx.AsyncClient, victim_keeps_completing: VictimCheck
    ) -> None:
        """Mallory's starts past its burst answer 429 problem+json with Retry-After; the victim's runs complete."""

        async def attack() -> list[httpx.Response]:
            return [
                await mallory.post(
                    "/v3/workflow/start",
                    json={"workflow": {"id": "ordinary"}, "params": {"values": [1]}, "syncTimeoutMs": 0},
                )
                for _ in range(MALLORY_LIMITS.starts_burst + 3)
            ]

        answers: list[httpx.Response] = []

        async def recorded() -> None:
            answers.extend(await attack())

        await victim_keeps_completing(recorded())
        limited = [answer for answer in answers if answer.status_code == 429]
        assert len(limited) >= 3, [answer.status_code for answer in answers]
        assert all(answer.status_code in (200, 202) for answer in answers[: MALLORY_LIMITS.starts_burst])
        for answer in limited:
            _problem(answer, 429)
            assert int(answer.headers["retry-after"]) >= 1

    async def test_sync_calls_past_the_tenants_bound_answer_429_and_the_victim_is_unaffected(
        self,
        mallory: httpx.AsyncClient,
        attacker_store: httpx.AsyncClient,
        victim_keeps_completing: VictimCheck,
    ) -> None:
        """Mallory's open sync calls are bounded: one past the bound answers 429 at once while the victim completes."""
        stub = Hanging()
        await stub.start()
        definition_id = await define(
            attacker_store,
            {
                "fetch": inline({"type": "HTTP", "request": {"method": "GET", "url": f"{stub.url}/slow"}}, "done"),
                "done": inline({"type": "SUCCESS", "disposition": "DONE"}),
            },
            "fetch",
            prefix="edges",
        )
        held = [
            asyncio.ensure_future(
                mallory.post(
                    "/v3/workflow/start",
                    json={"workflow": {"id": definition_id}, "workflowId": f"edge-hold-{i}-{uuid.uuid4().hex[:6]}"},
                )
            )
            for i in range(MALLORY_LIMITS.sync_waiters)
        ]
        try:
            await stub.wait_until(lambda: stub.arrived >= MALLORY_LIMITS.sync_waiters, timeout=30)

            async def attack() -> None:
                extra = await mallory.post("/v3/workflow/start", json={"workflow": {"id": definition_id}})
                body = _problem(extra, 429)
                assert "sync" in body["detail"] and int(extra.headers["retry-after"]) >= 1

            await victim_keeps_completing(attack())
        finally:
            stub.release.set()
            answers = await asyncio.gather(*held)
            await stub.close()
        assert [answer.json()["workflowStatus"] for answer in answers] == ["COMPLETED"] * len(held)
