"""Tenant isolation on every /v3 route, correlated log lines, and secrets that never reach a log."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.starts import waiting_hello

from drift_cli.platform import Platform
from e2e.keys import KEYS, WEBHOOK_SECRET

pytestmark = pytest.mark.asyncio(loop_scope="session")

DECIDE = {"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}}


def _shape(response: httpx.Response) -> tuple[int, str, str]:
    """What a caller can see of an answer, with the run id taken out."""
    body = response.json()
    return response.status_code, response.headers["content-type"], str(body.get("title"))


async def test_another_tenants_run_answers_like_a_missing_one_on_every_route(
    gateway: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    """globex gets the same 404 problem for acme's run as for a run that never existed, on every route."""
    workflow_id = await waiting_hello(gateway, "iso", "Iso")
    missing = f"iso-missing-{uuid.uuid4().hex[:8]}"

    def routes(run: str) -> list[tuple[str, str, Any]]:
        return [
            ("GET", f"/v3/workflow/{run}", None),
            ("GET", f"/v3/workflow/{run}/timeline", None),
            ("PUT", f"/v3/workflow/resume/{run}", DECIDE),
            ("POST", f"/v3/workflow/{run}/event/go", {"x": 1}),
            ("POST", f"/v3/workflow/{run}/disconnected-node/execute", {"node": "greet", "parameters": {}}),
            ("DELETE", f"/v3/workflow/terminate/{run}", None),
        ]

    for (method, path, body), (_, missing_path, _) in zip(routes(workflow_id), routes(missing), strict=True):
        foreign = await globex.request(method, path, json=body)
        absent = await globex.request(method, missing_path, json=body)
        assert foreign.status_code == 404, (method, path, foreign.text)
        assert _shape(foreign) == _shape(absent), (method, path)
        # Word for word the same answer, once the id the caller sent is taken out.
        assert foreign.text.replace(workflow_id, "ID") == absent.text.replace(missing, "ID"), (method, path)
    # Nothing globex sent touched acme's run: it still waits and resumes for its owner.
    assert (await gateway.get(f"/v3/workflow/{workflow_id}")).json()["workflowStatus"] == "WAITING"
    assert (await gateway.put(f"/v3/workflow/resume/{workflow_id}", json=DECIDE)).json()["workflowStatus"] == (
        "COMPLETED"
    )


def _log_lines(platform: Platform) -> dict[str, list[dict[str, Any]]]:
    lines: dict[str, list[dict[str, Any]]] = {}
    for service in platform.services:
        path = Path(platform.config.home) / "logs" / f"{service.name}.log"
        entries = []
        for raw in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        lines[service.name] = entries
    return lines


async def test_log_lines_of_a_run_carry_trace_and_run_fields(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """Every JSON line naming a run carries trace_id, span_id, workflow_id and tenant, in each of the four services."""
    workflow_id = await waiting_hello(gateway, "logs", "Iso")
    await gateway.put(f"/v3/workflow/resume/{workflow_id}", json=DECIDE)
    by_service = {
        name: [entry for entry in entries if entry.get("workflow_id") == workflow_id]
        for name, entries in _log_lines(platform).items()
    }
    for name in ("gateway", "dispatcher", "worker-1", "notifier"):
        assert by_service.get(name), f"{name} wrote no line about the run"
    for name, entries in by_service.items():
        for entry in entries:
            missing = {"trace_id", "span_id", "workflow_id", "tenant"} - entry.keys()
            assert not missing, (name, entry.get("event"), missing)
            assert entry["tenant"] == "acme", (name, entry)
            assert "." in entry["event"], (name, entry["event"])


async def test_keys_and_secrets_never_reach_a_log(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """No service log holds an API key, the service token or the webhook secret, even after refused calls."""
    async with httpx.AsyncClient(base_url=str(gateway.base_url)) as anonymous:
        await anonymous.get("/v3/workflow/x", headers={"Authorization": "Bearer key-acme-but-wrong"})
    await waiting_hello(gateway, "secret", "Iso")
    secrets = [*KEYS, "key-acme-but-wrong", platform.secrets.service_token, WEBHOOK_SECRET]
    secrets.append(WEBHOOK_SECRET.removeprefix("whsec_"))
    for service in platform.services:
        text = (Path(platform.config.home) / "logs" / f"{service.name}.log").read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, (service.name, secret[:6])
