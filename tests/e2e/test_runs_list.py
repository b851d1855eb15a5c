"""`GET /v3/workflows` on the real stack (contract 8.1): listed within 5 s, filtered, paged, tenant-scoped."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from support.polling import until

from drift_cli.bundles import dsl_store_client
from drift_cli.platform import Platform
from e2e.definitions import failure, ok, on_event, state, success

pytestmark = pytest.mark.asyncio(loop_scope="session")

VISIBLE_WITHIN_S = 5.0
"""The contract's promise: a run, and each status change of it, is listed within 5 seconds."""
SETTLED_S = 15.0
"""Where a test checks filters rather than latency, it waits this long for the listing to settle."""


FLOW: dict[str, Any] = {
    "startNode": "route",
    "states": {
        "route": state(
            {
                "type": "BRANCH",
                "choices": [
                    {"rule": "{% $global.params.mode = 'wait' %}", "nextNode": "hold"},
                    {"rule": "{% $global.params.mode = 'fail' %}", "nextNode": "boom"},
                ],
                "defaultNode": "done",
            }
        ),
        "hold": on_event("go", "done"),
        "boom": failure("boom"),
        "done": success("ok"),
    },
}


async def _define(platform: Platform, key: str, definition_id: str, versions: int = 1) -> None:
    """Create the flow under `definition_id` and publish it `versions` times (the first one active)."""
    async with dsl_store_client(platform.dsl_store_url, key) as dsl:
        ok(await dsl.post("/workflowDefinition", json={"id": definition_id, **FLOW}))
        for number in range(1, versions + 1):
            if number > 1:  # publishing an unchanged snapshot again answers the same version
                body = {"id": definition_id, "comment": f"version {number}", **FLOW}
                ok(await dsl.put("/workflowDefinition", json=body))
            published = ok(await dsl.post(f"/workflowDefinition/{definition_id}/publishWorkflow"))
            assert published["version"] == str(number), published
        ok(await dsl.post(f"/workflowDefinition/{definition_id}/activate", params={"version": "1"}))


async def _start(client: httpx.AsyncClient, definition_id: str, run_id: str, mode: str, version: str = "1") -> str:
    body = {"workflow": {"id": definition_id, "version": version}, "workflowId": run_id, "params": {"mode": mode}}
    return str(ok(await client.post("/v3/workflow/start", json=body))["workflowStatus"])


async def _list(client: httpx.AsyncClient, **query: Any) -> dict[str, Any]:
    params = [(name, value) for name, values in query.items() for value in _many(values)]
    answer: dict[str, Any] = ok(await client.get("/v3/workflows", params=params))
    return answer


def _many(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


async def _until(check: Callable[[], Awaitable[Any]], within: float = SETTLED_S) -> Any:
    """Poll `check` until it answers something truthy; fail after `within` seconds (no event exists for this)."""
    return await until(check, within, failure="not listed within")


def _by_id(page: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {run["workflowId"]: run for run in page["runs"]}


class Seeded:
    """One definition (two published versions) and five acme runs of it, one per status."""

    def __init__(self, definition_id: str, before: datetime) -> None:
        self.definition_id = definition_id
        self.before = before
        tag = uuid.uuid4().hex[:8]
        self.completed = f"ok-{tag}"
        self.failed = f"fail-{tag}"
        self.waiting = f"wait-{tag}"
        self.terminated = f"term-{tag}"
        self.second_version = f"v2-{tag}"

    @property
    def expected(self) -> dict[str, str]:
        return {
            self.completed: "COMPLETED",
            self.failed: "FAILED",
            self.waiting: "WAITING",
            self.terminated: "TERMINATED",
            self.second_version: "COMPLETED",
        }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(platform: Platform) -> Seeded:
    async with httpx.AsyncClient(
        base_url=platform.gateway_url, headers={"Authorization": "Bearer key-acme"}, timeout=60
    ) as acme:
        definition_id = f"listed_{uuid.uuid4().hex[:10]}"
        await _define(platform, "key-acme", definition_id, versions=2)
        runs = Seeded(definition_id, datetime.now(UTC) - timedelta(seconds=1))
        assert await _start(acme, definition_id, runs.completed, "ok") == "COMPLETED"
        assert await _start(acme, definition_id, runs.failed, "fail") == "FAILED"
        assert await _start(acme, definition_id, runs.waiting, "wait") == "WAITING"
        assert await _start(acme, definition_id, runs.terminated, "wait") == "WAITING"
        ok(await acme.delete(f"/v3/workflow/terminate/{runs.terminated}"))
        assert await _start(acme, definition_id, runs.second_version, "ok", version="2") == "COMPLETED"
        return runs


async def _listed_as_expected(gateway: httpx.AsyncClient, seeded: Seeded) -> dict[str, dict[str, Any]]:
    async def check() -> dict[str, dict[str, Any]] | None:
        runs = _by_id(await _list(gateway, definitionId=seeded.definition_id))
        statuses = {run_id: run["workflowStatus"] for run_id, run in runs.items()}
        return runs if statuses == seeded.expected else None

    result: dict[str, dict[str, Any]] = await _until(check)
    return result


async def test_runs_are_listed_with_their_summary(gateway: httpx.AsyncClient, seeded: Seeded) -> None:
    """Each run is listed with its status, definition, pinned version, current node and times, newest first."""
    runs = await _listed_as_expected(gateway, seeded)
    waiting = runs[seeded.waiting]
    assert waiting["definitionId"] == seeded.definition_id
    assert waiting["definitionVersion"] == "1"
    assert waiting["currentNode"] == "hold"
    assert waiting["closedAt"] is None
    assert runs[seeded.second_version]["definitionVersion"] == "2"
    for run_id in (seeded.completed, seeded.failed, seeded.terminated):
        assert runs[run_id]["closedAt"] is not None, runs[run_id]
    page = await _list(gateway, definitionId=seeded.definition_id)
    # Newest first. A SQL visibility store (the dev server's) lists open runs ahead of closed ones;
    # these closed in the order they started, so either way the closed ones come newest first.
    closed = [run for run in page["runs"] if run["closedAt"] is not None]
    assert [run["startedAt"] for run in closed] == sorted((run["startedAt"] for run in closed), reverse=True)
    assert closed[0]["workflowId"] == seeded.second_version
    assert page["nextPageToken"] is None


async def test_status_filter_uses_drift_statuses(gateway: httpx.AsyncClient, seeded: Seeded) -> None:
    """`status` filters by Drift's statuses (WAITING is not Temporal's Running); repeated, they are OR-ed."""
    await _listed_as_expected(gateway, seeded)
    ended = _by_id(await _list(gateway, definitionId=seeded.definition_id, status=["FAILED", "TERMINATED"]))
    assert set(ended) == {seeded.failed, seeded.terminated}
    waiting = _by_id(await _list(gateway, definitionId=seeded.definition_id, status="WAITING"))
    assert set(waiting) == {seeded.waiting}
    completed = _by_id(await _list(gateway, definitionId=seeded.definition_id, status="COMPLETED"))
    assert set(completed) == {seeded.completed, seeded.second_version}
    running = await _list(gateway, definitionId=seeded.definition_id, status="RUNNING")
    assert running["runs"] == []
    bad = await gateway.get("/v3/workflows", params={"status": "ASLEEP"})
    assert bad.status_code == 422, bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["pointer"] == "/status/0"


async def test_version_and_time_filters(gateway: httpx.AsyncClient, seeded: Seeded) -> None:
    """`definitionVersion` matches the pinned version; `startedAfter`/`startedBefore` bound the start time."""
    runs = await _listed_as_expected(gateway, seeded)
    second = _by_id(await _list(gateway, definitionId=seeded.definition_id, definitionVersion="2"))
    assert set(second) == {seeded.second_version}
    before = seeded.before.isoformat().replace("+00:00", "Z")
    assert set(_by_id(await _list(gateway, definitionId=seeded.definition_id, startedAfter=before))) == set(runs)
    assert (await _list(gateway, definitionId=seeded.definition_id, startedBefore=before))["runs"] == []
    pivot = runs[seeded.waiting]["startedAt"]
    later = _by_id(await _list(gateway, definitionId=seeded.definition_id, startedAfter=pivot))
    assert set(later) == {seeded.waiting, seeded.terminated, seeded.second_version}
    earlier = _by_id(await _list(gateway, definitionId=seeded.definition_id, startedBefore=pivot))
    assert set(earlier) == {seeded.completed, seeded.failed}
    naive = await gateway.get("/v3/workflows", params={"startedAfter": "2026-01-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["pointer"] == "/startedAfter"


async def test_pages_chain_through_every_run(
    gateway: httpx.AsyncClient, globex: httpx.AsyncClient, seeded: Seeded
) -> None:
    """pageSize pages through every run once, newest first; a token only works for its own tenant and query."""
    await _listed_as_expected(gateway, seeded)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        query: dict[str, Any] = {"definitionId": seeded.definition_id, "pageSize": 2}
        if token:
            query["pageToken"] = token
        page = await _list(gateway, **query)
        pages += 1
        assert len(page["runs"]) <= 2
        seen += [run["workflowId"] for run in page["runs"]]
        token = page["nextPageToken"]
        if token is None:
            break
        if pages == 1:
            stolen = await globex.get(
                "/v3/workflows", params={"definitionId": seeded.definition_id, "pageSize": 2, "pageToken": token}
            )
            assert stolen.status_code == 422, stolen.text
            other_query = await gateway.get("/v3/workflows", params={"pageSize": 2, "pageToken": token})
            assert other_query.status_code == 422, other_query.text
    assert pages >= 3
    assert sorted(seen) == sorted(seeded.expected) and len(seen) == len(set(seen))
    for size in ("0", "501", "many"):
        bad = await gateway.get("/v3/workflows", params={"pageSize": size})
        assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/pageSize"


async def test_a_status_change_is_listed_within_five_seconds(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """A run is listed within 5 s of its start, and its new status within 5 s of the change."""
    definition_id = f"changing_{uuid.uuid4().hex[:10]}"
    await _define(platform, "key-acme", definition_id)
    run_id = f"change-{uuid.uuid4().hex[:8]}"
    assert await _start(gateway, definition_id, run_id, "wait") == "WAITING"

    async def listed_as(status: str) -> Any:
        runs = _by_id(await _list(gateway, definitionId=definition_id, status=status))
        return runs.get(run_id)

    await _until(lambda: listed_as("WAITING"), VISIBLE_WITHIN_S)
    ok(await gateway.post(f"/v3/workflow/{run_id}/event/go", json={}))
    completed = await _until(lambda: listed_as("COMPLETED"), VISIBLE_WITHIN_S)
    assert completed["currentNode"] == "done"


async def test_tenants_see_only_their_own_runs(
    platform: Platform, gateway: httpx.AsyncClient, globex: httpx.AsyncClient, seeded: Seeded
) -> None:
    """Another tenant never lists acme's runs, even under the same definition id and workflowId."""
    await _listed_as_expected(gateway, seeded)
    await _define(platform, "key-globex", seeded.definition_id)
    assert await _start(globex, seeded.definition_id, seeded.completed, "wait") == "WAITING"

    async def globex_lists_its_own() -> Any:
        runs = _by_id(await _list(globex, definitionId=seeded.definition_id))
        return runs if seeded.completed in runs and runs[seeded.completed]["workflowStatus"] == "WAITING" else None

    theirs = await _until(globex_lists_its_own)
    assert set(theirs) == {seeded.completed}
    everything = _by_id(await _list(globex, pageSize=500))
    assert not set(everything) & (set(seeded.expected) - {seeded.completed})
    ours = _by_id(await _list(gateway, definitionId=seeded.definition_id))
    assert ours[seeded.completed]["workflowStatus"] == "COMPLETED"
    assert set(ours) == set(seeded.expected)
    ok(await globex.delete(f"/v3/workflow/terminate/{seeded.completed}"))


async def test_a_retried_run_is_listed_once_with_its_new_status(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """After a retry (same workflowId, new execution), the run is listed once, under its new status only."""
    definition_id = f"retried_{uuid.uuid4().hex[:10]}"
    await _define(platform, "key-acme", definition_id)
    run_id = f"again-{uuid.uuid4().hex[:8]}"
    assert await _start(gateway, definition_id, run_id, "wait") == "WAITING"
    ok(await gateway.delete(f"/v3/workflow/terminate/{run_id}"))

    async def listed_as(status: str) -> Any:
        runs = (await _list(gateway, definitionId=definition_id))["runs"]
        return runs if [(run["workflowId"], run["workflowStatus"]) for run in runs] == [(run_id, status)] else None

    await _until(lambda: listed_as("TERMINATED"))
    retried = ok(await gateway.put(f"/v3/workflow/retry/{run_id}", json={}))
    assert retried["workflowStatus"] == "WAITING", retried
    await _until(lambda: listed_as("WAITING"))
    assert (await _list(gateway, definitionId=definition_id, status="TERMINATED"))["runs"] == []
    ok(await gateway.delete(f"/v3/workflow/terminate/{run_id}"))


async def test_test_runs_are_never_listed(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """A test run (POST /v3/workflow/test, DriftKind=test) is never listed; a real run of its definition is."""
    definition_id = f"tested_{uuid.uuid4().hex[:10]}"
    await _define(platform, "key-acme", definition_id)
    tested = ok(
        await gateway.post(
            "/v3/workflow/test", json={"workflow": {"id": definition_id, "version": "1"}, "params": {"mode": "ok"}}
        )
    )
    assert tested["workflowStatus"] == "COMPLETED", tested
    run_id = f"real-{uuid.uuid4().hex[:8]}"
    assert await _start(gateway, definition_id, run_id, "ok") == "COMPLETED"

    async def the_real_run_listed() -> Any:
        runs = (await _list(gateway, definitionId=definition_id))["runs"]
        return runs if any(run["workflowId"] == run_id for run in runs) else None

    # The test run started first: had it been listable, it would be listed by now too.
    runs = await _until(the_real_run_listed)
    assert [run["workflowId"] for run in runs] == [run_id]
