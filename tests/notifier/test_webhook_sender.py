"""One webhook attempt is bounded: header and total deadlines, a capped response read, settled by its status."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from standardwebhooks import Webhook

from drift_notifier.config import WebhookLimits
from drift_notifier.webhooks import WebhookSender, http_client
from drift_runtime.messaging import TransientFault
from drift_runtime.ssrf import Guard
from drift_schema.events import WorkflowEvent
from drift_schema.statuses import WorkflowStatus
from notifier.stubs import Flood, Gate, SlowBody, Trickle

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "whsec_" + "c2VjcmV0LWZvci1ub3RpZmllci10ZXN0cw=="
LIMITS = WebhookLimits(connect_timeout_s=1.0, header_timeout_s=0.6, total_timeout_s=1.5, max_response_bytes=4096)


def event(url: str, event_id: str = "run-1:s2") -> WorkflowEvent:
    return WorkflowEvent(
        workflow_id="w-1",
        workflow_status=WorkflowStatus.COMPLETED,
        event_id=event_id,
        tenant="acme",
        seq=2,
        callback_url=url,
        disposition="DONE",
    )


@pytest_asyncio.fixture(loop_scope="session")
async def sender() -> AsyncIterator[WebhookSender]:
    async with http_client(LIMITS) as http:
        yield WebhookSender(http, SECRET, Guard(["127.0.0.1"]), LIMITS)


def read_bytes() -> float:
    return REGISTRY.get_sample_value("drift_webhook_response_bytes_total") or 0.0


async def test_trickled_headers_fail_the_attempt_at_the_header_deadline(sender: WebhookSender) -> None:
    """A receiver that sends a header line every 0.2 s forever is cut off at the header deadline and retried."""
    async with Trickle() as receiver:
        began = time.monotonic()
        with pytest.raises(TransientFault, match="no response headers within"):
            await sender.deliver(event(receiver.url), attempt=1)
        took = time.monotonic() - began
        assert LIMITS.header_timeout_s <= took < LIMITS.header_timeout_s + 0.5
        assert await receiver.wait_until(lambda: receiver.lifetimes, 2.0), "the connection was closed"


async def test_a_huge_body_is_read_no_further_than_the_cap(sender: WebhookSender) -> None:
    """A 2xx answer with a 128 MiB body counts as delivered after reading at most one chunk past the cap."""
    before = read_bytes()
    async with Flood(status=200) as receiver:
        await sender.deliver(event(receiver.url), attempt=1)
        assert await receiver.wait_until(lambda: receiver.sent, 5.0)
    assert read_bytes() - before <= LIMITS.max_response_bytes + 64 * 1024
    assert receiver.sent[0] < 32 * 1024 * 1024, "the receiver saw the connection closed early"


async def test_a_failure_status_with_a_huge_body_is_retried(sender: WebhookSender) -> None:
    """A 500 with a huge body is not delivered: the attempt asks for a retry, reading only the capped prefix."""
    async with Flood(status=500) as receiver:
        with pytest.raises(TransientFault, match="receiver answered 500"):
            await sender.deliver(event(receiver.url), attempt=1)
        assert await receiver.wait_until(lambda: receiver.sent, 5.0)
    assert receiver.sent[0] < 32 * 1024 * 1024


async def test_a_slow_body_after_a_2xx_ends_at_the_total_deadline_and_counts_as_delivered(
    sender: WebhookSender,
) -> None:
    """Headers on time, body a byte at a time: the status settles it, the read stops at the total deadline."""
    async with SlowBody() as receiver:
        began = time.monotonic()
        await sender.deliver(event(receiver.url), attempt=1)
        assert time.monotonic() - began < LIMITS.total_timeout_s + 0.5


async def test_a_signed_webhook_is_delivered_once_with_its_event_id(sender: WebhookSender) -> None:
    """A prompt 200 settles the attempt; the request is a verifiable Standard Webhook named by the event id."""
    async with Gate() as receiver:
        receiver.opened.set()
        await sender.deliver(event(receiver.url, "run-9:s4"), attempt=1)
    [request] = receiver.requests
    assert request.headers["webhook-id"] == "run-9:s4"
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["workflowId"] == "w-1" and payload["workflowStatus"] == "COMPLETED"
