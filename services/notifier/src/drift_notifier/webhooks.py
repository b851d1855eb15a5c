"""Async mode: every stable state of a run with a `callbackUrl` POSTed as a signed Standard Webhook.

JetStream is the durable delivery queue: an event stays unacknowledged until
its webhook is delivered (2xx) or refused for good (410, or a URL the SSRF
guard refuses). A failed attempt is redelivered with exponential backoff and
jitter, slower on 429. The `webhook-id` is the event's id, identical on every
attempt and after a notifier restart, so receivers can drop duplicates.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec
import structlog
from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import Counter
from standardwebhooks import Webhook

from drift_notifier.states import decode_event
from drift_runtime.messaging import TransientFault, delivery_count
from drift_runtime.ssrf import Guard, SsrfRefused, Target
from drift_runtime.telemetry import inject_headers
from drift_schema.api import WorkflowResponse
from drift_schema.events import WorkflowEvent
from drift_schema.statuses import WorkflowStatus

log = structlog.get_logger("drift.notifier")
tracer = trace.get_tracer("drift.notifier.webhooks")

DELIVERED_STATUSES = frozenset(WorkflowStatus) - {WorkflowStatus.CREATED, WorkflowStatus.RUNNING}
MAX_ATTEMPTS = 25
BASE_DELAY_S = 1.0
MAX_DELAY_S = 300.0
TIMEOUT = httpx.Timeout(10.0, connect=3.0)

deliveries = Counter("drift_webhook_deliveries_total", "Webhook attempts by outcome", ["outcome"])


def backoff_s(attempt: int, rng: random.Random = random.Random()) -> float:
    """Exponential backoff with jitter: about 1 s, 2 s, 4 s … capped at 5 minutes, each scaled by 0.5-1.0."""
    delay = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(0, attempt - 1))
    return delay * rng.uniform(0.5, 1.0)


def retry_after_s(response: httpx.Response) -> float | None:
    """The receiver's `Retry-After` in seconds (RFC 9110: delay seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def pinned_url(target: Target) -> str:
    """The URL with its host replaced by the vetted address, so no second DNS lookup can redirect it."""
    parts = urlsplit(target.url)
    host = f"[{target.address}]" if target.address.version == 6 else str(target.address)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


class WebhookSender:
    """Signs and delivers one event's webhook per call; raises TransientFault to be retried later."""

    def __init__(self, http: httpx.AsyncClient, secret: str, guard: Guard) -> None:
        self.http = http
        self.signer = Webhook(secret)
        self.guard = guard

    async def handle(self, msg: Msg) -> None:
        event = decode_event(msg)
        if event.callback_url is None or event.workflow_status not in DELIVERED_STATUSES:
            return
        attempt = delivery_count(msg)
        bound = log.bind(tenant=event.tenant, workflow_id=event.workflow_id, webhook_id=event.event_id, attempt=attempt)
        try:
            target = await self.guard.vet(event.callback_url)
        except SsrfRefused as refused:
            deliveries.labels("refused").inc()
            bound.warning("webhook.refused_by_guard", reason=str(refused))
            return
        response = await self._post(target, event, attempt, bound)
        if response is None:
            return
        if response.is_success:
            deliveries.labels("delivered").inc()
            bound.info("webhook.delivered", status=response.status_code)
            return
        if response.status_code == 410:
            deliveries.labels("gone").inc()
            bound.info("webhook.receiver_gone")
            return
        delay = backoff_s(attempt)
        if response.status_code == 429:
            delay = max(delay * 2, retry_after_s(response) or 0.0)
        self._retry_or_give_up(attempt, delay, f"receiver answered {response.status_code}", bound)

    async def _post(
        self, target: Target, event: WorkflowEvent, attempt: int, bound: structlog.typing.FilteringBoundLogger
    ) -> httpx.Response | None:
        body = msgspec.json.encode(
            WorkflowResponse(
                workflow_id=event.workflow_id,
                workflow_status=event.workflow_status,
                current_node=event.current_node,
                disposition=event.disposition,
                error_message=event.error_message,
                view=event.view,
            )
        )
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "host": urlsplit(target.url).netloc.rsplit("@", 1)[-1],
            "webhook-id": event.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.sign(event.event_id, now, body.decode()),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        parts = urlsplit(target.url)
        # A client span per attempt, as httpx instrumentation would make; the query may hold tokens, so it stays out.
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "url.full": urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path or "/", "", "")),
            "server.address": target.host,
            "server.port": target.port,
            "drift.webhook_id": event.event_id,
            "drift.attempt": attempt,
        }
        with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes=attributes) as span:
            try:
                response = await self.http.post(
                    pinned_url(target), content=body, headers=inject_headers(headers), extensions=extensions
                )
            except httpx.HTTPError as error:
                span.record_exception(error)
                span.set_status(StatusCode.ERROR, type(error).__name__)
                self._retry_or_give_up(attempt, backoff_s(attempt), f"{type(error).__name__}: {error}", bound)
                return None
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(StatusCode.ERROR)
            return response

    @staticmethod
    def _retry_or_give_up(
        attempt: int, delay: float, reason: str, bound: structlog.typing.FilteringBoundLogger
    ) -> None:
        if attempt >= MAX_ATTEMPTS:
            deliveries.labels("abandoned").inc()
            bound.error("webhook.abandoned", reason=reason)
            return
        deliveries.labels("retried").inc()
        raise TransientFault(reason, delay_s=delay)


def http_client() -> httpx.AsyncClient:
    # Redirects are not followed: a redirect could lead past the SSRF guard.
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
