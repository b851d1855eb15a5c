"""Definition management on the running platform: a delete reaches the next start; export, import, start elsewhere."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from drift_cli.bundles import dsl_store_client
from drift_cli.platform import Platform
from e2e.definitions import state

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _waiting_flow(definition_id: str) -> dict[str, Any]:
    """A workflow that waits for event `go`, then succeeds; its nodes inline."""
    wait = {"id": "wait", "type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "go", "timeoutSeconds": 120}}
    return {
        "id": definition_id,
        "startNode": "wait",
        "states": {
            "wait": state(wait, "done"),
            "done": state({"id": "done", "type": "SUCCESS", "disposition": "went"}, end=True),
        },
    }


async def _publish(dsl: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert (await dsl.post("/workflowDefinition", json=body)).status_code == 201
    published = await dsl.post(f"/workflowDefinition/{body['id']}/publishWorkflow")
    assert published.status_code == 200, published.text


async def test_a_deleted_workflow_cannot_start_but_its_runs_go_on(
    platform: Platform, gateway: httpx.AsyncClient
) -> None:
    """After DELETE, a start answers 404 (dispatcher and dsl-store caches dropped); a run started before completes."""
    definition_id = f"doomed_{uuid.uuid4().hex[:8]}"
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        await _publish(dsl, _waiting_flow(definition_id))
        # Two starts: the second is served from the dispatcher's cache of the pinned definition.
        for attempt in range(2):
            started = await gateway.post(
                "/v3/workflow/start",
                json={"workflow": {"id": definition_id}, "workflowId": f"{definition_id}-{attempt}"},
            )
            assert started.status_code == 200, started.text
            assert started.json()["workflowStatus"] == "WAITING"
        assert (await dsl.delete(f"/workflowDefinition/{definition_id}")).status_code == 204

    refused = await gateway.post(
        "/v3/workflow/start", json={"workflow": {"id": definition_id}, "workflowId": f"{definition_id}-late"}
    )
    assert refused.status_code == 404, refused.text
    resumed = await gateway.post(f"/v3/workflow/{definition_id}-1/event/go", json={"ok": True})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["workflowStatus"] == "COMPLETED" and resumed.json()["disposition"] == "went"


async def _drift(platform: Platform, key: str, *argv: str) -> tuple[int, str, str]:
    env = {**os.environ, "DRIFT_DSL_STORE_URL": platform.dsl_store_url, "DRIFT_API_KEY": key}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "drift_cli",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_export_from_one_tenant_import_and_start_in_another(
    platform: Platform, globex: httpx.AsyncClient, tmp_path: Path
) -> None:
    """`drift export` in acme and `drift import --publish --activate` in globex: the workflow runs in globex."""
    suffix = uuid.uuid4().hex[:8]
    node = {"id": f"greet_{suffix}", "type": "SCRIPT", "output": "{% 'hi ' & $global.params.name %}"}
    done = {"id": f"end_{suffix}", "type": "SUCCESS", "disposition": "{% $global.hello %}"}
    child = {
        "id": f"child_{suffix}",
        "startNode": "hello",
        "states": {
            "hello": {"resourceId": node["id"], "nextNode": "end"},
            "end": {"resourceId": done["id"], "end": True},
        },
    }
    parent = {
        "id": f"parent_{suffix}",
        "startNode": "call",
        "states": {
            "call": {
                "nodeDefinition": {
                    "id": "call",
                    "type": "CHILD",
                    "childWorkflowId": child["id"],
                    "params": "{% $global.params %}",
                },
                "nextNode": "end",
            },
            "end": {
                "nodeDefinition": {"id": "end", "type": "SUCCESS", "disposition": "{% $global.call.disposition %}"},
                "end": True,
            },
        },
    }
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        for definition in (node, done):
            assert (await dsl.post("/nodeDefinition", json=definition)).status_code == 201
            assert (await dsl.post(f"/nodeDefinition/{definition['id']}/publishNode")).status_code == 200
        await _publish(dsl, child)
        await _publish(dsl, parent)

    bundle_file = tmp_path / "bundle.json"
    code, _, err = await _drift(platform, "key-acme", "export", parent["id"], "-o", str(bundle_file))
    assert code == 0, err
    bundle = json.loads(bundle_file.read_text())
    assert {w["id"] for w in bundle["workflowDefinitions"]} == {parent["id"], child["id"]}

    code, out, err = await _drift(platform, "key-globex", "import", str(bundle_file), "--publish", "--activate")
    assert code == 0, err
    created = next(line for line in out.splitlines() if line.startswith("created: "))
    assert set(created.removeprefix("created: ").split(", ")) == {node["id"], done["id"], child["id"], parent["id"]}

    started = await globex.post(
        "/v3/workflow/start", json={"workflow": {"id": parent["id"]}, "params": {"name": "Ada"}}
    )
    assert started.status_code == 200, started.text
    assert started.json()["workflowStatus"] == "COMPLETED", started.json()

    # An invalid bundle is refused whole, with pointers on one stderr line, and the CLI exits 7 (invalid).
    bundle["workflowDefinitions"][0]["startNode"] = "nowhere"
    bundle["nodeDefinitions"].append({"id": f"new_{suffix}", "type": "SCRIPT", "output": "{% 1 %}"})
    bundle_file.write_text(json.dumps(bundle))
    code, _, err = await _drift(platform, "key-globex", "import", str(bundle_file), "--publish")
    assert code == 7 and "/workflowDefinitions/0/startNode" in err and err.count("\n") == 1
    async with dsl_store_client(platform.dsl_store_url, "key-globex") as dsl:
        assert (await dsl.get(f"/nodeDefinition/new_{suffix}", params={"version": "SNAPSHOT"})).status_code == 404

    code, out, _ = await _drift(platform, "key-globex", "defs", "list", "--prefix", "parent_", "--json")
    assert code == 0 and [row["id"] for row in json.loads(out)] == [parent["id"]]
    code, _, err = await _drift(platform, "key-globex", "defs", "delete", "--node", node["id"])
    assert code == 6 and child["id"] in err  # 409: still referenced
