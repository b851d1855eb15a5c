"""The Studio's live feed and proxy under a hostile tenant: nothing of another tenant's runs, no starvation."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from drift_cli.platform import Platform
from hostile.support import VictimCheck, bearer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _start_waiting(client: httpx.AsyncClient, key: str, run_id: str) -> None:
    answer = await client.post(
        "/api/gateway/v3/workflow/start",
        headers=bearer(key),
        json={"workflow": {"id": "hello_approval"}, "workflowId": run_id, "params": {"name": "Eve"}},
    )
    assert answer.status_code == 200 and answer.json()["workflowStatus"] == "WAITING", answer.text


async def test_attacker_cannot_open_the_feed_of_a_victims_run(hostile_platform: Platform) -> None:
    """Another tenant's run id answers 404 on the feed, exactly as an unknown id does."""
    run_id = f"victim-live-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=hostile_platform.studio_url, timeout=60) as studio:
        await _start_waiting(studio, "key-globex", run_id)
        theirs = await studio.get(f"/api/runs/{run_id}/events", headers=bearer("key-mallory"))
        unknown = await studio.get(f"/api/runs/no-such-{run_id}/events", headers=bearer("key-mallory"))
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json()["title"] == unknown.json()["title"]
        for wildcard in ("*", ">", "a.b"):
            assert (await studio.get(f"/api/runs/{wildcard}/events", headers=bearer("key-mallory"))).status_code == 404


async def test_a_feed_never_carries_another_tenants_run_of_the_same_id(hostile_platform: Platform) -> None:
    """Both tenants run `shared`; the attacker's feed on it shows only the attacker's own events."""
    run_id = f"shared-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=hostile_platform.studio_url, timeout=60) as studio:
        await _start_waiting(studio, "key-mallory", run_id)
        await _start_waiting(studio, "key-globex", run_id)
        events: list[dict[str, object]] = []
        async with studio.stream("GET", f"/api/runs/{run_id}/events", headers=bearer("key-mallory")) as feed:
            assert feed.status_code == 200

            async def collect() -> None:
                async for line in feed.aiter_lines():
                    if line.startswith("data:"):
                        event = json.loads(line[5:])
                        events.append(event)
                        if event.get("workflowStatus") == "TERMINATED":
                            return

            reader = asyncio.create_task(collect())
            # The victim's run moves first (it completes), then the attacker ends its own.
            victim = await studio.put(
                f"/api/gateway/v3/workflow/resume/{run_id}",
                headers=bearer("key-globex"),
                json={"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}},
            )
            assert victim.json()["workflowStatus"] == "COMPLETED"
            ended = await studio.delete(f"/api/gateway/v3/workflow/terminate/{run_id}", headers=bearer("key-mallory"))
            assert ended.status_code == 200
            await asyncio.wait_for(reader, 30)
    seen = [e for e in events if e]
    assert seen, "the attacker's own events must arrive"
    assert all(e.get("tenant") == "mallory" for e in seen), seen


async def test_many_feeds_are_capped_and_do_not_slow_the_victim(
    hostile_platform: Platform, victim_keeps_completing: VictimCheck
) -> None:
    """The attacker opens feeds until refused (429); the victim's runs keep completing meanwhile."""
    run_id = f"feeds-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=hostile_platform.studio_url, timeout=60) as studio:
        await _start_waiting(studio, "key-mallory", run_id)
        streams: list[httpx.Response] = []
        # Each feed's line iterator is kept: a dropped one would close its stream.
        readers: list[object] = []

        async def flood() -> int:
            for _ in range(64):
                request = studio.build_request("GET", f"/api/runs/{run_id}/events", headers=bearer("key-mallory"))
                response = await studio.send(request, stream=True)
                if response.status_code == 429:
                    await response.aclose()
                    return len(streams)
                assert response.status_code == 200
                streams.append(response)
                lines = response.aiter_lines()
                readers.append(lines)
                # Read the first event so the feed counts as open.
                await lines.__anext__()
            return len(streams)

        try:
            held = await flood()
            assert held < 64, "the feeds of one tenant must be capped"
            await victim_keeps_completing(asyncio.sleep(0.5))
            # The victim's own feed still opens while the attacker holds all of its own.
            victim_run = f"victim-feed-{uuid.uuid4().hex[:8]}"
            await _start_waiting(studio, "key-globex", victim_run)
            async with studio.stream("GET", f"/api/runs/{victim_run}/events", headers=bearer("key-globex")) as own:
                assert own.status_code == 200
        finally:
            for stream in streams:
                await stream.aclose()
