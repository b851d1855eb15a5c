"""Tenant crossing on every route of both services and on the NATS subjects an upstream user may touch.

Another tenant's definition, enum, run context or run must answer exactly
like a missing one: the same status and the same problem body (the id
aside), whichever credential asks (its own key, the service token naming it,
its key with a forged X-Drift-Tenant). tests/dsl_store/test_auth.py and
tests/e2e/test_hello_approval.py cover reads and resume; this covers the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from support.nats_auth import service_and_upstream, tenants_nats

from drift_cli.platform import Platform
from drift_dsl_store.app import create_app
from drift_dsl_store.config import Settings
from drift_dsl_store.events import NoChangePublisher
from drift_runtime import messaging
from drift_runtime.auth import ApiKeys
from drift_schema import subjects
from fuzz.fuzz_support import SERVICE_TOKEN, bearer

Client = AsyncTestClient[Any]
ACME = bearer("k-acme")
SERVICE = bearer(SERVICE_TOKEN)
# Every way globex may ask: its key, the service token acting for it, its key with acme's name forged in.
AS_GLOBEX = {
    "globex key": bearer("k-globex"),
    "service token for globex": {**SERVICE, "X-Drift-Tenant": "globex"},
    "globex key claiming acme": {**bearer("k-globex"), "X-Drift-Tenant": "acme"},
}
OWNED, MISSING = "owned", "missing"


@pytest_asyncio.fixture(loop_scope="session")
async def store(tmp_path: Path) -> AsyncIterator[Client]:
    """A dsl-store holding acme's published node `owned`, workflow `owned` (ACTIVE v1), enum and run context."""
    settings = Settings(
        store_url=f"sqlite+aiosqlite:///{tmp_path / 'drift.db'}",
        api_keys=ApiKeys({"k-acme": "acme", "k-globex": "globex"}),
        service_token=SERVICE_TOKEN,
    )
    async with AsyncTestClient(app=create_app(settings, changes=NoChangePublisher())) as client:
        for kind, body in (
            ("nodeDefinition", {"id": OWNED, "type": "SCRIPT", "output": "{% 1 %}"}),
            ("nodeDefinition", {"id": "done", "type": "SUCCESS", "disposition": "OK"}),
        ):
            assert (await client.post(f"/{kind}", json=body, headers=ACME)).status_code == 201
            assert (await client.post(f"/{kind}/{body['id']}/publishNode", headers=ACME)).status_code == 200
        workflow = {
            "id": OWNED,
            "startNode": "a",
            "states": {"a": {"resourceId": OWNED, "nextNode": "b"}, "b": {"resourceId": "done", "end": True}},
        }
        assert (await client.post("/workflowDefinition", json=workflow, headers=ACME)).status_code == 201
        assert (await client.post(f"/workflowDefinition/{OWNED}/publishWorkflow", headers=ACME)).status_code == 200
        assert (await client.put(f"/enums/{OWNED}", json={"secret": 1}, headers=ACME)).status_code == 200
        context = {
            "workflowId": OWNED,
            "workflowStatus": "WAITING",
            "runId": "r1",
            "seq": 1,
            "updatedAt": "2026-12-01T10:00:00Z",
        }
        stored = await client.put(f"/runs/{OWNED}", json=context, headers={**SERVICE, "X-Drift-Tenant": "acme"})
        assert stored.status_code == 200
        yield client


def _node(node_id: str) -> dict[str, Any]:
    return {"id": node_id, "type": "SCRIPT", "output": "{% 2 %}"}


def _workflow(workflow_id: str) -> dict[str, Any]:
    return {"id": workflow_id, "startNode": "a", "states": {"a": {"resourceId": "x", "end": True}}}


# (method, path with {id}, query, body maker): every dsl-store route that names an acme-owned thing.
DSL_ROUTES: list[tuple[str, str, dict[str, str], Any]] = [
    ("GET", "/nodeDefinition/{id}", {}, None),
    ("GET", "/nodeDefinition/{id}", {"version": "SNAPSHOT"}, None),
    ("GET", "/nodeDefinition/{id}", {"version": "1"}, None),
    ("PUT", "/nodeDefinition", {}, _node),
    ("POST", "/nodeDefinition/{id}/publishNode", {}, None),
    ("GET", "/workflowDefinition/{id}", {"version": "ACTIVE"}, None),
    ("GET", "/workflowDefinition/{id}", {"version": "1", "enrichNodeDefinition": "true"}, None),
    ("GET", "/workflowDefinition/{id}", {"version": "SNAPSHOT"}, None),
    ("PUT", "/workflowDefinition", {}, _workflow),
    ("POST", "/workflowDefinition/{id}/publishWorkflow", {}, None),
    ("POST", "/workflowDefinition/{id}/activate", {"version": "1"}, None),
    ("GET", "/workflowDefinition/{id}/versions", {}, None),
    ("GET", "/workflowDefinition/treeView/{id}", {"format": "svg"}, None),
    ("GET", "/workflowDefinition/treeView/{id}", {"format": "mermaid"}, None),
    ("GET", "/enums/{id}", {}, None),
    ("DELETE", "/enums/{id}", {}, None),
    ("GET", "/runs/{id}", {}, None),
]


async def _ask(client: Any, route: tuple[str, str, dict[str, str], Any], target: str, headers: dict[str, str]) -> Any:
    method, path, query, body = route
    return await client.request(
        method,
        path.format(id=target),
        params=query,
        json=body(target) if body is not None else None,
        headers=headers,
    )


def _same_answer(foreign: Any, missing: Any) -> None:
    assert foreign.status_code == missing.status_code == 404, (foreign.status_code, foreign.text, missing.text)
    assert foreign.headers["content-type"] == missing.headers["content-type"] == "application/problem+json"
    assert foreign.text.replace(OWNED, MISSING) == missing.text


@pytest.mark.parametrize("caller", AS_GLOBEX.keys())
@pytest.mark.parametrize("route", DSL_ROUTES, ids=[f"{r[0]} {r[1]} {r[2]}" for r in DSL_ROUTES])
async def test_another_tenants_definitions_answer_like_missing_ones(
    store: Client, route: tuple[str, str, dict[str, str], Any], caller: str
) -> None:
    """Every dsl-store route asked for acme's thing by globex answers the very 404 a missing thing gets."""
    headers = AS_GLOBEX[caller]
    foreign = await _ask(store, route, OWNED, headers)
    missing = await _ask(store, route, MISSING, headers)
    _same_answer(foreign, missing)
    # Nothing of acme's changed: its workflow is still ACTIVE at v1 and its enum still there.
    assert (await store.get(f"/workflowDefinition/{OWNED}", params={"version": "ACTIVE"}, headers=ACME)).json()[
        "version"
    ] == "1"
    assert (await store.get(f"/enums/{OWNED}", headers=ACME)).json() == {"secret": 1}


async def test_another_tenants_enums_do_not_show_in_the_listing(store: Client) -> None:
    """GET /enums lists the caller's enums only; acme's never appear for globex."""
    for headers in AS_GLOBEX.values():
        assert (await store.get("/enums", headers=headers)).json() == {}


# ---- gateway ---------------------------------------------------------------------------------------

GATEWAY_ROUTES: list[tuple[str, str, dict[str, str], Any]] = [
    ("GET", "/v3/workflow/{id}", {}, None),
    ("GET", "/v3/workflow/{id}/timeline", {}, None),
    ("PUT", "/v3/workflow/resume/{id}", {}, lambda _: {"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}}),
    ("POST", "/v3/workflow/{id}/event/go", {}, lambda _: {"x": 1}),
    ("POST", "/v3/workflow/{id}/disconnected-node/execute", {}, lambda _: {"node": "greet"}),
    ("DELETE", "/v3/workflow/terminate/{id}", {"reason": "crossing"}, None),
    ("PUT", "/v3/workflow/retry/{id}", {}, lambda _: {"fromNode": "greet"}),
]


async def test_another_tenants_runs_answer_like_missing_ones_on_every_route(fuzz_platform: Platform) -> None:
    """Every run route (read, timeline, resume, event, disconnected, terminate, retry) on acme's run by globex: 404."""
    async with (
        httpx.AsyncClient(base_url=fuzz_platform.gateway_url, headers=bearer("key-acme"), timeout=60) as acme,
        httpx.AsyncClient(base_url=fuzz_platform.gateway_url, headers=bearer("key-globex"), timeout=60) as globex,
    ):
        started = await acme.post(
            "/v3/workflow/start",
            json={"workflow": {"id": "hello_approval"}, "workflowId": OWNED, "params": {"name": "Ada"}},
        )
        assert started.json()["workflowStatus"] == "WAITING", started.text
        for route in GATEWAY_ROUTES:
            foreign = await _ask(globex, route, OWNED, {})
            missing = await _ask(globex, route, MISSING, {})
            assert foreign.status_code == missing.status_code == 404, (route, foreign.text, missing.text)
            assert foreign.text.replace(OWNED, MISSING) == missing.text, route
        # None of it reached acme's run: still WAITING, and its timeline is its own.
        assert (await acme.get(f"/v3/workflow/{OWNED}")).json()["workflowStatus"] == "WAITING"
        # globex may use the same workflowId: it is another run in another namespace of ids.
        own = await globex.post(
            "/v3/workflow/start",
            json={"workflow": {"id": "hello_approval"}, "workflowId": OWNED, "params": {"name": "Bob"}},
        )
        assert own.json()["workflowStatus"] == "WAITING"
        assert (await acme.get(f"/v3/workflow/{OWNED}")).json()["context"]["params"] == {"name": "Ada"}


# ---- NATS ------------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def secured_nats(tmp_path: Path) -> AsyncIterator[str]:
    """A nats-server with the shipped config/nats/tenants.conf, on a free loopback port."""
    async with tenants_nats(tmp_path) as url:
        yield url


TENANTS = st.from_regex(r"\A[A-Za-z0-9_-]{1,12}\Z").filter(lambda name: name != "acme")
FOREIGN_SUBJECTS = st.one_of(
    st.tuples(TENANTS, st.sampled_from(["start", "resume", "terminate", "event", "retry"])).map(
        lambda pair: subjects.command(*pair)
    ),
    st.sampled_from(
        [
            "drift.acme.evt.workflow.x",  # events are Drift's to publish, not an upstream's
            "drift.acme.cmd.start.extra",
            "$JS.API.STREAM.LIST",
            f"$JS.API.CONSUMER.CREATE.{subjects.EVENT_STREAM}",
            f"$JS.API.STREAM.MSG.GET.{subjects.EVENT_STREAM}",
            f"$JS.API.STREAM.PURGE.{subjects.COMMAND_STREAM}",
        ]
    ),
)
FOREIGN_SUBSCRIPTIONS = st.one_of(
    TENANTS.map(lambda tenant: f"drift.{tenant}.evt.>"),
    TENANTS.map(lambda tenant: f"drift.{tenant}.cmd.*"),
    st.sampled_from(["drift.*.evt.>", "drift.>", ">", "drift.acme.cmd.*", "$JS.>", "$KV.>"]),
)


@given(subject=FOREIGN_SUBJECTS, pattern=FOREIGN_SUBSCRIPTIONS)
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
async def test_upstream_user_is_refused_every_other_subject(secured_nats: str, subject: str, pattern: str) -> None:
    """acme's upstream user may not publish or subscribe beyond its own commands and events."""
    async with service_and_upstream(secured_nats) as (service, upstream, errors):
        received: asyncio.Queue[str] = asyncio.Queue()

        async def record(msg: Any) -> None:
            await received.put(msg.subject)

        await service.subscribe(">", cb=record)
        await service.flush()
        await upstream.publish(subject, b"{}")
        await upstream.flush()
        assert "permissions violation" in str(await asyncio.wait_for(errors.get(), 10)).lower()
        await upstream.subscribe(pattern)
        await upstream.flush()
        assert "permissions violation" in str(await asyncio.wait_for(errors.get(), 10)).lower()
        # A marker the service sends itself proves the refused publish was not merely still in flight.
        await service.publish("marker", b"")
        await service.flush()
        seen = [await asyncio.wait_for(received.get(), 10)]
        while seen[-1] != "marker":
            seen.append(await asyncio.wait_for(received.get(), 10))
        assert subject not in seen


async def test_upstream_user_cannot_read_other_tenants_events_through_inboxes(secured_nats: str) -> None:
    """Replaying globex's events for Drift (an ordered consumer delivering to an inbox) shows acme's user nothing."""
    # Connected the way Drift's services are (messaging.connect); nats-py reads the credentials from the URL.
    service = await messaging.connect(secured_nats.replace("nats://", "nats://drift:service-pw@"), "crossing-test")
    upstream = await nats.connect(secured_nats, user="acme", password="acme-pw")
    try:
        assert service.new_inbox().startswith(f"{messaging.SERVICE_INBOX_PREFIX}.")
        js = service.jetstream()
        await messaging.ensure_streams(js)
        await js.publish(subjects.node_events("globex", "secret-run"), b'{"secret":"of globex"}')
        overheard: list[bytes] = []

        async def listen(msg: Any) -> None:
            overheard.append(msg.data)

        # The default prefix, Drift's own, and a wildcard over every prefix an upstream might guess.
        for pattern in ("_INBOX.>", f"{messaging.SERVICE_INBOX_PREFIX}.>", "*.>"):
            await upstream.subscribe(pattern, cb=listen)
        await upstream.flush()
        replayed = [
            msg.data
            async for msg in messaging.replay(js, subjects.node_events("globex", "secret-run"), subjects.EVENT_STREAM)
        ]
        assert replayed == [b'{"secret":"of globex"}']
        await upstream.flush()
        assert not [data for data in overheard if b"of globex" in data]
    finally:
        await upstream.close()
        await service.close()
