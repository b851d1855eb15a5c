"""`drift runs` and `drift schedule ...` against the running platform, as a user types them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from typing import Any

import pytest

from drift_cli.bundles import dsl_store_client
from drift_cli.platform import Platform

pytestmark = pytest.mark.asyncio(loop_scope="session")

WITHIN_S = 10.0


async def _drift(platform: Platform, *argv: str) -> tuple[int, str]:
    env = {**os.environ, "DRIFT_GATEWAY_URL": platform.gateway_url, "DRIFT_API_KEY": "key-acme"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drift_cli", *argv, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def _define(platform: Platform) -> str:
    definition_id = f"cli_{uuid.uuid4().hex[:10]}"
    body: dict[str, Any] = {
        "id": definition_id,
        "startNode": "done",
        "states": {"done": {"nodeDefinition": {"id": "inline", "type": "SUCCESS", "disposition": "ok"}, "end": True}},
    }
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        assert (await dsl.post("/workflowDefinition", json=body)).is_success
        assert (await dsl.post(f"/workflowDefinition/{definition_id}/publishWorkflow")).is_success
        assert (await dsl.post(f"/workflowDefinition/{definition_id}/activate", params={"version": "1"})).is_success
    return definition_id


async def test_schedule_commands_and_runs_listing(platform: Platform) -> None:
    """`drift schedule create/trigger/pause/delete` manage a schedule; `drift runs` lists the run it started."""
    definition_id = await _define(platform)
    schedule_id = f"cli-{uuid.uuid4().hex[:8]}"
    code, out = await _drift(platform, "schedule", "create", schedule_id, definition_id, "--every", "3600", "--paused")
    assert code == 0, out
    assert json.loads(out)["intervalSeconds"] == 3600
    code, out = await _drift(platform, "schedule", "create", schedule_id, definition_id, "--cron", "0 3 * * *")
    assert (code, out) == (6, "")  # 409: one line on stderr, exit code 6
    code, out = await _drift(platform, "schedule", "trigger", schedule_id)
    assert code == 0, out

    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_S
    while True:
        code, out = await _drift(platform, "runs", "--definition", definition_id, "--status", "COMPLETED", "--json")
        assert code == 0, out
        runs = json.loads(out)["runs"]
        if runs or loop.time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert len(runs) == 1, out
    assert re.fullmatch(re.escape(schedule_id) + r"-\d{8}T\d{6}Z", runs[0]["workflowId"])
    code, table = await _drift(platform, "runs", "--definition", definition_id)
    assert code == 0
    header, row = table.splitlines()[:2]
    assert header.split()[:2] == ["WORKFLOW", "ID"] and row.split()[:2] == [runs[0]["workflowId"], "COMPLETED"]

    code, out = await _drift(platform, "runs", "--status", "ASLEEP")
    assert (code, out) == (7, "")  # 422
    code, out = await _drift(platform, "schedule", "pause", schedule_id)
    assert code == 0 and json.loads(out)["paused"] is True
    code, out = await _drift(platform, "schedule", "delete", schedule_id)
    assert code == 0, out
    code, out = await _drift(platform, "schedule", "get", schedule_id)
    assert (code, out) == (5, "")  # 404
