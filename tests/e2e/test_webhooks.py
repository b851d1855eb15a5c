"""Async webhooks against a real notifier: 410 stops, 429 slows, and a notifier restart neither drops nor doubles."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio
from standardwebhooks import Webhook
from support.loopback import HttpAnswer, HttpRequest, LoopbackServer
from support.starts import hello

from drift_cli.platform import Platform, Service
from drift_cli.servers import ManagedProcess, http_probe
from e2e.keys import WEBHOOK_SECRET

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class ScriptedReceiver(LoopbackServer):
    """Answers with the scripted answers in turn (then 200) and notes when each request arrived."""

    script: list[HttpAnswer] = field(default_factory=list)
    arrivals: list[tuple[float, HttpRequest, int]] = field(default_factory=list)

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        answer = self.script.pop(0) if self.script else HttpAnswer(200)
        self.arrivals.append((time.monotonic(), request, answer.status))
        return answer

    def of(self, webhook_id: str) -> list[tuple[float, HttpRequest, int]]:
        return [arrival for arrival in self.arrivals if arrival[1].headers["webhook-id"] == webhook_id]


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[ScriptedReceiver]:
    hooks = ScriptedReceiver()
    await hooks.start()
    yield hooks
    await hooks.close()


def _notifier(platform: Platform) -> Service:
    return next(service for service in platform.services if service.name == "notifier")


async def _deliveries(platform: Platform, outcome: str) -> float:
    base = _notifier(platform).ready_url.removesuffix("/health/ready")
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{base}/metrics")).text
    found = re.search(rf'^drift_webhook_deliveries_total\{{outcome="{outcome}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def _until_deliveries(platform: Platform, outcome: str, at_least: float, timeout: float = 30) -> None:
    """Poll the notifier's counter until it reaches `at_least` (the metric is the only outward sign of an ack)."""
    deadline = time.monotonic() + timeout
    while await _deliveries(platform, outcome) < at_least:
        assert time.monotonic() < deadline, f"no {outcome} delivery within {timeout} s"
        await asyncio.sleep(0.2)


async def _async_start(gateway: httpx.AsyncClient, url: str) -> str:
    workflow_id = f"wh-{uuid.uuid4().hex[:10]}"
    accepted = await gateway.post("/v3/workflow/start", json=hello(workflow_id, "Hook", callbackUrl=url))
    assert accepted.status_code == 202, accepted.text
    return workflow_id


async def test_a_410_stops_delivery_for_good(
    platform: Platform, gateway: httpx.AsyncClient, receiver: ScriptedReceiver
) -> None:
    """A receiver answering 410 Gone gets that webhook once: the notifier gives it up instead of retrying."""
    receiver.script = [HttpAnswer(410)]
    gone_before = await _deliveries(platform, "gone")
    await _async_start(gateway, f"{receiver.url}/hooks")
    await receiver.wait_until(lambda: len(receiver.arrivals) >= 1)
    webhook_id = receiver.arrivals[0][1].headers["webhook-id"]
    # The counter moves only after the handler returned: the event is acked, so nothing can follow.
    await _until_deliveries(platform, "gone", gone_before + 1)
    assert [status for _, _, status in receiver.of(webhook_id)] == [410]


async def test_429_slows_and_a_notifier_restart_neither_drops_nor_doubles(
    platform: Platform, gateway: httpx.AsyncClient, receiver: ScriptedReceiver
) -> None:
    """After 429 + Retry-After the retry waits that long, comes from the restarted notifier, same id, once."""
    retry_after_s = 6
    receiver.script = [HttpAnswer(429, headers={"Retry-After": str(retry_after_s)})]
    workflow_id = await _async_start(gateway, f"{receiver.url}/hooks")
    await receiver.wait_until(lambda: len(receiver.arrivals) >= 1)
    first_at, first, _ = receiver.arrivals[0]
    webhook_id = first.headers["webhook-id"]

    service = _notifier(platform)
    stopped = service.process
    stopped.stop()
    restarted_at = time.monotonic()
    fresh = ManagedProcess(stopped.name, stopped.argv, log_path=stopped.log_path, env=stopped.env)
    fresh.start()
    service.process = fresh
    await fresh.wait_ready(http_probe(service.ready_url), timeout=60)

    await receiver.wait_until(lambda: len(receiver.of(webhook_id)) >= 2, timeout=60)
    await _until_deliveries(platform, "delivered", 1)
    attempts = receiver.of(webhook_id)
    assert [status for _, _, status in attempts] == [429, 200], "one retry, delivered once"
    retry_at, retry, _ = attempts[1]
    assert retry_at - first_at >= retry_after_s - 0.5, "the retry honoured Retry-After"
    assert retry_at > restarted_at, "the pending delivery survived the restart"
    payload = Webhook(WEBHOOK_SECRET).verify(retry.body, retry.headers)
    assert payload["workflowId"] == workflow_id and payload["workflowStatus"] == "WAITING"
    assert retry.headers["webhook-signature"].startswith("v1,")
