"""The Python client and the `drift` run commands, against the running platform."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from typing import Any

import httpx
import pytest

from drift_cli.platform import Platform
from drift_cli.servers import InfraStack
from drift_client import DriftClient, DriftError, follow_events
from drift_schema.events import NodeEvent, WorkflowEvent
from drift_schema.statuses import WorkflowStatus

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_client_drives_a_run_with_typed_answers(platform: Platform) -> None:
    """start, get, resume and terminate answer drift-schema Structs; errors raise DriftError with the problem."""
    async with DriftClient(platform.gateway_url, "key-acme") as client:
        workflow_id = f"cl-{uuid.uuid4().hex[:10]}"
        waiting = await client.start("hello_approval", workflow_id=workflow_id, params={"name": "Cy"})
        assert waiting.workflow_status is WorkflowStatus.WAITING
        assert (await client.get(workflow_id)).context["greet"]["message"] == "Hello, Cy!"
        done = await client.resume(workflow_id, {"decision": "APPROVE"})
        assert done.disposition == "APPROVED: Hello, Cy!"
        with pytest.raises(DriftError) as missing:
            await client.get("no-such-run")
        assert missing.value.status == 404 and missing.value.problem.title == "Not Found"

        other = f"cl-{uuid.uuid4().hex[:10]}"
        await client.start("hello_approval", workflow_id=other, params={"name": "Di"})
        terminated = await client.terminate(other, reason="test")
        assert terminated.workflow_status is WorkflowStatus.TERMINATED


async def test_follow_events_lists_a_runs_status_and_node_events(platform: Platform, infra: InfraStack) -> None:
    """The events of a finished run come back in order: status events with rising seq, node events by instance."""
    async with DriftClient(platform.gateway_url, "key-acme") as client:
        workflow_id = f"ev-{uuid.uuid4().hex[:10]}"
        await client.start("hello_approval", workflow_id=workflow_id, params={"name": "Ed"})
        await client.resume(workflow_id, {"decision": "REJECT"})
    events = [event async for event in follow_events(infra.nats_url, "acme", workflow_id)]
    statuses = [e for e in events if isinstance(e, WorkflowEvent)]
    nodes = [e for e in events if isinstance(e, NodeEvent)]
    assert [e.workflow_status for e in statuses] == ["RUNNING", "WAITING", "RUNNING", "FAILED"]
    assert [e.seq for e in statuses] == [1, 2, 3, 4]
    assert [n.instance_name for n in nodes] == ["greet", "ask_approval", "route_decision", "rejected"]
    assert all(n.status == "COMPLETED" and n.tenant == "acme" for n in nodes)


async def _spawn_drift(
    *args: str, env: dict[str, str], stderr: int = asyncio.subprocess.PIPE
) -> asyncio.subprocess.Process:
    """Start `drift ARGS` as its own process, with `env` over this one's environment; its stdout piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "drift_cli",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )


async def _drift_output(*args: str, env: dict[str, str]) -> bytes:
    """What `drift ARGS` printed on stdout; it must exit 0 within a minute."""
    process = await _spawn_drift(*args, env=env)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out


async def _drift(*args: str, env: dict[str, str]) -> dict[str, Any]:
    """The JSON `drift ARGS` printed; it must exit 0 within a minute."""
    answer: dict[str, Any] = json.loads(await _drift_output(*args, env=env))
    return answer


async def test_cli_start_resume_get(platform: Platform) -> None:
    """`drift start`, `drift resume --select` and `drift get` print the gateway's JSON answers."""
    env = {"DRIFT_GATEWAY_URL": platform.gateway_url, "DRIFT_API_KEY": "key-acme"}
    workflow_id = f"cli-{uuid.uuid4().hex[:10]}"
    started = await _drift("start", "hello_approval", "--id", workflow_id, "--params", '{"name": "Fay"}', env=env)
    assert started["workflowStatus"] == "WAITING"
    resumed = await _drift("resume", workflow_id, "--select", "decision=APPROVE", env=env)
    assert resumed["workflowStatus"] == "COMPLETED"
    fetched = await _drift("get", workflow_id, env=env)
    assert fetched["context"]["ask_approval"] == {"selectedOptions": {"decision": "APPROVE"}}


async def test_timeline_lists_node_visits_with_timings(platform: Platform) -> None:
    """GET …/timeline (and `DriftClient.timeline`) lists each node visit in order with status and duration."""
    async with DriftClient(platform.gateway_url, "key-acme") as client:
        workflow_id = f"tl-{uuid.uuid4().hex[:10]}"
        await client.start("hello_approval", workflow_id=workflow_id, params={"name": "Gus"})
        await client.resume(workflow_id, {"decision": "APPROVE"})
        timeline = await client.timeline(workflow_id)
        with pytest.raises(DriftError) as missing:
            await client.timeline("never-ran")
    assert [entry.instance_name for entry in timeline.nodes] == ["greet", "ask_approval", "route_decision", "approved"]
    assert [entry.node_type for entry in timeline.nodes] == ["SCRIPT", "INSTRUCTION", "BRANCH", "SUCCESS"]
    assert all(entry.status == "COMPLETED" and entry.duration_ms is not None for entry in timeline.nodes)
    assert missing.value.status == 404


async def test_every_service_serves_prometheus_metrics(platform: Platform) -> None:
    """/metrics on both HTTP services and on each background service's port, with Drift's and Temporal's series."""
    async with DriftClient(platform.gateway_url, "key-acme") as client:
        # One run of its own, so each series below has samples even when this test runs alone.
        await client.start("hello_approval", workflow_id=f"mx-{uuid.uuid4().hex[:10]}", params={"name": "Mo"})
    async with httpx.AsyncClient(timeout=10) as http:
        texts = {}
        for service in platform.services:
            base = service.ready_url.removesuffix("/health/ready")
            response = await http.get(f"{base}/metrics")
            assert response.status_code == 200, service.name
            texts[service.name] = response.text
    assert "drift_sync_waiters_active" in texts["gateway"]
    assert "drift_sync_waiters_timed_out_total" in texts["gateway"]
    assert 'drift_commands_total{kind="start",outcome="accepted"}' in texts["dispatcher"]
    assert 'drift_dispatch_seconds_count{kind="start"}' in texts["dispatcher"]
    assert 'drift_run_status_events_total{status="WAITING"}' in texts["notifier"]
    assert "drift_webhook_deliveries_total" in texts["notifier"]
    # Node durations by type and outcome, from the visits the earlier tests' runs made.
    assert 'drift_node_seconds_count{outcome="COMPLETED",type="SCRIPT"}' in texts["worker-1"]
    assert "drift_dsl_changes_total" in texts["dsl-store"]
    assert "temporal_" in texts["dispatcher"] and "temporal_" in texts["worker-1"]


async def test_cli_terminate_timeline_and_events(platform: Platform) -> None:
    """`drift terminate`, `drift get --timeline` and `drift events` print the run's answers and events."""
    env = {"DRIFT_GATEWAY_URL": platform.gateway_url, "DRIFT_API_KEY": "key-acme"}
    workflow_id = f"clt-{uuid.uuid4().hex[:10]}"
    await _drift("start", "hello_approval", "--id", workflow_id, "--params", '{"name": "Hal"}', env=env)
    timeline = await _drift("get", workflow_id, "--timeline", "-o", "json", env=env)
    # The waiting INSTRUCTION has no node event until it is answered.
    assert [entry["instanceName"] for entry in timeline["nodes"]] == ["greet"]
    ended = await _drift("terminate", workflow_id, "--reason", "from the cli", env=env)
    assert ended == {"workflowId": workflow_id, "workflowStatus": "TERMINATED"}

    nats_env = {"DRIFT_NATS_URL": platform.infra.nats_url}
    out = await _drift_output("events", workflow_id, "--tenant", "acme", "-o", "json", env=nats_env)
    statuses = [json.loads(line).get("workflowStatus") for line in out.decode().splitlines()]
    assert [status for status in statuses if status] == ["RUNNING", "WAITING", "TERMINATED"]


async def test_cli_events_follow_prints_new_events_as_they_happen(platform: Platform) -> None:
    """`drift events ID --follow` prints the stored events, then the ones a later resume causes, until stopped."""
    async with DriftClient(platform.gateway_url, "key-acme") as client:
        workflow_id = f"clf-{uuid.uuid4().hex[:10]}"
        await client.start("hello_approval", workflow_id=workflow_id, params={"name": "Ivy"})
        process = await _spawn_drift(
            "events",
            workflow_id,
            "--tenant",
            "acme",
            "--follow",
            "-o",
            "json",
            env={"DRIFT_NATS_URL": platform.infra.nats_url},
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert process.stdout is not None
        try:

            async def until(status: str) -> None:
                while True:
                    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)  # type: ignore[union-attr]
                    assert line, "drift events --follow ended early"
                    if json.loads(line).get("workflowStatus") == status:
                        return

            await until("WAITING")
            await client.resume(workflow_id, {"decision": "APPROVE"})
            await until("COMPLETED")
            assert process.returncode is None, "--follow keeps running after the run's last event"
        finally:
            process.terminate()
            await process.wait()
