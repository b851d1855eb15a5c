"""The Studio's backend on the real platform: pages, headers, the proxy with the caller's key, live events."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from drift_cli.platform import Platform

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_every_page_path_serves_the_app_with_a_strict_csp(platform: Platform) -> None:
    """Each Studio path answers the built app, with a CSP allowing only the Studio's own origin."""
    async with httpx.AsyncClient(base_url=platform.studio_url) as studio:
        for path in ["/", "/workflows/hello_approval", "/runs", "/runs/x-1", "/tasks", "/schedules"]:
            answer = await studio.get(path)
            assert answer.status_code == 200, path
            assert '<div id="root">' in answer.text
            csp = answer.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp
            assert "http" not in csp  # no other origin, no CDN
        script = next(part.split('"')[0] for part in answer.text.split('src="')[1:] if part.startswith("/assets/"))
        asset = await studio.get(script)
        assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
        assert "immutable" in asset.headers["cache-control"]
        assert (await studio.get("/assets/missing.js")).status_code == 404


async def test_the_proxy_carries_the_callers_own_key(platform: Platform) -> None:
    """The API answers through the Studio exactly as it does directly: 401 without a key, tenant-scoped with one."""
    async with httpx.AsyncClient(base_url=platform.studio_url, timeout=30) as studio:
        assert (await studio.get("/api/dsl/workflowDefinition/hello_approval")).status_code == 401
        acme = {"Authorization": "Bearer key-acme"}
        globex = {"Authorization": "Bearer key-globex"}
        found = await studio.get("/api/dsl/workflowDefinition/hello_approval", headers=acme)
        assert found.status_code == 200 and found.json()["id"] == "hello_approval"
        # The examples are loaded for acme only: globex sees nothing, as if it did not exist.
        hidden = await studio.get("/api/dsl/workflowDefinition/hello_approval", headers=globex)
        assert hidden.status_code == 404
        assert hidden.headers["content-type"].startswith("application/problem+json")
        assert (await studio.get("/api/session", headers=acme)).json() == {"tenant": "acme"}
        assert (await studio.get("/api/session", headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_node_type_schemas_come_from_the_structs(platform: Platform) -> None:
    """The dsl-store serves every node type's JSON Schema; the Studio's inspector builds its forms from it."""
    async with httpx.AsyncClient(base_url=platform.studio_url, timeout=30) as studio:
        answer = await studio.get("/api/dsl/nodeTypes", headers={"Authorization": "Bearer key-acme"})
    assert answer.status_code == 200
    doc = answer.json()
    assert {"HTTP", "SCRIPT", "BRANCH", "INSTRUCTION", "WAIT", "CHILD", "PARALLEL", "SUCCESS", "FAILURE"} <= set(
        doc["types"]
    )
    script = doc["$defs"][doc["types"]["SCRIPT"]["$ref"].split("/")[-1]]
    assert "output" in script["properties"]


async def test_swagger_pages_load_nothing_from_the_internet(platform: Platform) -> None:
    """Both Swagger pages reference only their own /schema/assets files, and those files are served."""
    async with httpx.AsyncClient(timeout=30) as client:
        for base in (platform.gateway_url, platform.dsl_store_url):
            page = (await client.get(f"{base}/schema/swagger")).text
            assert "cdn." not in page and "https://" not in page
            for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
                assert f"/schema/assets/{asset}" in page
                served = await client.get(f"{base}/schema/assets/{asset}")
                assert served.status_code == 200 and len(served.content) > 1000


async def _read_events(response: httpx.Response, want: int) -> list[tuple[str, dict[str, object]]]:
    events: list[tuple[str, dict[str, object]]] = []
    kind = ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            events.append((kind, json.loads(line.split(":", 1)[1])))
            if len(events) >= want:
                break
    return events


async def test_live_feed_streams_a_runs_events_and_only_to_its_tenant(platform: Platform) -> None:
    """The feed sends the run's node and status events to its own tenant; another tenant's key gets 404."""
    run_id = f"studio-live-{uuid.uuid4().hex[:8]}"
    acme = {"Authorization": "Bearer key-acme"}
    async with httpx.AsyncClient(base_url=platform.studio_url, timeout=60) as studio:
        start = await studio.post(
            "/api/gateway/v3/workflow/start",
            headers=acme,
            json={"workflow": {"id": "hello_approval"}, "workflowId": run_id, "params": {"name": "Ada"}},
        )
        assert start.status_code == 200 and start.json()["workflowStatus"] == "WAITING"
        other = await studio.get(f"/api/runs/{run_id}/events", headers={"Authorization": "Bearer key-globex"})
        assert other.status_code == 404
        assert (await studio.get(f"/api/runs/{run_id}/events")).status_code == 401
        async with studio.stream("GET", f"/api/runs/{run_id}/events", headers=acme) as feed:
            assert feed.status_code == 200
            assert feed.headers["content-type"].startswith("text/event-stream")
            reader = asyncio.create_task(_read_events(feed, 4))
            # `ready` first: subscribed before anything is resumed, so nothing is missed.
            await asyncio.sleep(0)
            resume = await studio.put(
                f"/api/gateway/v3/workflow/resume/{run_id}",
                headers=acme,
                json={"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}},
            )
            assert resume.json()["workflowStatus"] == "COMPLETED"
            events = await asyncio.wait_for(reader, 30)
    assert events[0][0] == "ready"
    kinds = {kind for kind, _ in events[1:]}
    assert "node" in kinds
    assert all(data.get("tenant") == "acme" for _, data in events[1:])
    assert all(data.get("workflowId") == run_id for _, data in events[1:])
