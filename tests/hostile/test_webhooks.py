"""Hostile webhook receivers: `mallory`'s hanging or flooding receivers never delay `globex`'s webhooks.

The attacker's runs carry a `callbackUrl` pointing at stub receivers on 127.0.0.1 that either trickle
their response headers (one line every two seconds, forever) or answer with a huge body; the victim's
runs carry a `callbackUrl` to a healthy receiver. Loopback callbacks are allowed the way `drift dev`
allows them (its default `DRIFT_HTTP_ALLOW_HOSTS` lists the loopback addresses).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from standardwebhooks import Webhook
from support.loopback import HttpAnswer, HttpRequest, LoopbackServer, read_request

from drift_cli.platform import Platform
from hostile.support import VICTIM_DEADLINE_S, WEBHOOK_SECRET

pytestmark = pytest.mark.asyncio(loop_scope="session")

HEADER_DEADLINE_S = 10.0
"""The notifier's default deadline for a receiver's response headers (`DRIFT_WEBHOOK_HEADER_TIMEOUT_S`)."""
HANGING_RUNS = 40
"""More hanging webhooks than the notifier ever had delivery slots for all tenants together (16)."""
HUGE_BODY = 256 * 1024 * 1024


@dataclass
class StubServer(LoopbackServer):
    """A loopback server that writes raw bytes on each connection; closing it cuts the open connections too."""

    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()
            await self.notify()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


@dataclass
class TricklingReceiver(StubServer):
    """Answers a status line, then one header line every `interval_s`, never ending its headers."""

    interval_s: float = 2.0
    open_now: int = 0
    lifetimes: list[float] = field(default_factory=list)
    """How long each connection lasted before the notifier closed it."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        began = time.monotonic()
        await read_request(reader)
        self.open_now += 1
        await self.notify()
        trickle = asyncio.create_task(self._trickle(writer))
        try:
            # The notifier sends nothing more: end of stream means it closed the connection.
            await reader.read()
            self.lifetimes.append(time.monotonic() - began)
        finally:
            trickle.cancel()
            self.open_now -= 1

    async def _trickle(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:
            await writer.drain()
            await asyncio.sleep(self.interval_s)
            writer.write(b"X-Still-Coming: 1\r\n")


@dataclass(frozen=True)
class Flood:
    webhook_id: str
    status: int
    sent: int
    """Body bytes the receiver could send before the notifier closed the connection."""


@dataclass
class FloodingReceiver(StubServer):
    """Answers each webhook with the next scripted status (then 200) and a `HUGE_BODY`-byte body."""

    script: list[int] = field(default_factory=list)
    floods: list[Flood] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        status = self.script.pop(0) if self.script else 200
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/octet-stream\r\nContent-Length: {HUGE_BODY}\r\n\r\n"
        writer.write(head.encode())
        chunk, sent = bytes(256 * 1024), 0
        try:
            while sent < HUGE_BODY:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        finally:
            self.floods.append(Flood(request.headers["webhook-id"], status, sent))


@dataclass
class HealthyReceiver(LoopbackServer):
    """Answers 200 at once and notes when each run's webhook arrived."""

    arrivals: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        payload = Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
        self.arrivals.setdefault(payload["workflowId"], time.monotonic())
        self.statuses[payload["workflowId"]] = payload["workflowStatus"]
        return HttpAnswer(200)


@pytest_asyncio.fixture(loop_scope="session")
async def healthy() -> AsyncIterator[HealthyReceiver]:
    async with HealthyReceiver() as receiver:
        yield receiver


async def _start_with_callback(client: httpx.AsyncClient, workflow_id: str, url: str) -> None:
    accepted = await client.post(
        "/v3/workflow/start",
        json={
            "workflow": {"id": "ordinary"},
            "workflowId": workflow_id,
            "params": {"values": [1, 2, 3]},
            "callbackUrl": url,
        },
    )
    assert accepted.status_code == 202, accepted.text


async def _victim_webhook_s(victim: httpx.AsyncClient, healthy: HealthyReceiver, tag: str) -> float:
    """Start one victim run with a callback; the seconds until its COMPLETED webhook arrived."""
    workflow_id = f"victim-hook-{tag}-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    await _start_with_callback(victim, workflow_id, healthy.url + "/hooks")
    arrived = await healthy.holds_within(lambda: workflow_id in healthy.arrivals, VICTIM_DEADLINE_S * 2)
    assert arrived, f"the victim's webhook did not arrive within {VICTIM_DEADLINE_S * 2:g} s of the attack"
    assert healthy.statuses[workflow_id] == "COMPLETED"
    return healthy.arrivals[workflow_id] - began


async def _until_completed(client: httpx.AsyncClient, workflow_ids: list[str], timeout: float = 60) -> None:
    """Poll the runs until each is COMPLETED (a run's state change has no event a test can await over HTTP)."""
    deadline = time.monotonic() + timeout
    pending = list(workflow_ids)
    while pending:
        answer = await client.get(f"/v3/workflow/{pending[0]}")
        if answer.status_code == 200 and answer.json()["workflowStatus"] == "COMPLETED":
            pending.pop(0)
            continue
        assert time.monotonic() < deadline, f"{pending[0]} not COMPLETED within {timeout:g} s: {answer.text}"
        await asyncio.sleep(0.2)


def _notifier_peak_rss(platform: Platform) -> int:
    """The notifier process's peak resident set size in bytes (VmHWM)."""
    notifier = next(service for service in platform.services if service.name == "notifier")
    status = Path(f"/proc/{notifier.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


async def test_hanging_receivers_of_one_tenant_never_delay_another_tenants_webhooks(
    attacker: httpx.AsyncClient, victim: httpx.AsyncClient, healthy: HealthyReceiver
) -> None:
    """40 receivers trickling their headers hold only the attacker's share; the victim's webhooks arrive at once."""
    async with TricklingReceiver() as trickler:
        tag = uuid.uuid4().hex[:8]
        await asyncio.gather(
            *(_start_with_callback(attacker, f"hang-{tag}-{i}", trickler.url + "/hooks") for i in range(HANGING_RUNS))
        )
        # The attack is on once the notifier holds hanging connections (its share, or every slot before the fix)
        # and every attacking run has completed, so all 40 webhooks are the notifier's to deliver.
        assert await trickler.holds_within(lambda: trickler.open_now >= 8, 30), "the attack never started"
        await _until_completed(attacker, [f"hang-{tag}-{i}" for i in range(HANGING_RUNS)])

        took = [await _victim_webhook_s(victim, healthy, f"{tag}-{i}") for i in range(5)]
        assert max(took) < VICTIM_DEADLINE_S, f"victim webhooks took {took} s while receivers hung"

        # And a trickling receiver is cut off at the header deadline, not held as long as it likes.
        assert await trickler.holds_within(lambda: bool(trickler.lifetimes), HEADER_DEADLINE_S + 10)
        assert min(trickler.lifetimes) < HEADER_DEADLINE_S + 2.0, trickler.lifetimes


async def test_a_huge_response_body_is_not_read_and_only_its_status_counts(
    attacker: httpx.AsyncClient, hostile_platform: Platform
) -> None:
    """A 256 MiB answer is cut off after a few KiB, the notifier's memory stays flat; a 500 is retried, a 200 ends."""
    async with FloodingReceiver(script=[500]) as flooder:
        peak_before = _notifier_peak_rss(hostile_platform)
        await _start_with_callback(attacker, f"flood-{uuid.uuid4().hex[:8]}", flooder.url + "/hooks")
        # The 500 is retried after its backoff (about a second), the 200 settles the webhook.
        assert await flooder.holds_within(lambda: len(flooder.floods) >= 2, 30), flooder.floods
        first, second = flooder.floods[:2]
        assert (first.status, second.status) == (500, 200)
        assert first.webhook_id == second.webhook_id, "the retry is the same webhook"
        # What the kernel's socket buffers absorb, no more: the notifier closed the connection early.
        assert max(first.sent, second.sent) < 32 * 1024 * 1024, flooder.floods
        grown = _notifier_peak_rss(hostile_platform) - peak_before
        assert grown < 64 * 1024 * 1024, f"the notifier's peak RSS grew {grown / 2**20:.0f} MiB"
        # Delivered on the 200: no third attempt follows.
        assert not await flooder.holds_within(lambda: len(flooder.floods) >= 3, 2.0), flooder.floods
