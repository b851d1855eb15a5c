"""Async mode: every stable state of a run with a `callbackUrl` POSTed as a signed Standard Webhook.

JetStream is the durable delivery queue: an event stays unacknowledged until
its webhook is delivered (2xx) or refused for good (410, or a URL the SSRF
guard refuses). A failed attempt is redelivered with exponential backoff and
jitter, slower on 429. The `webhook-id` is the event's id, identical on every
attempt and after a notifier restart, so receivers can drop duplicates.

Every attempt is bounded (`WebhookLimits`): a connect deadline, a deadline for
the receiver's status line and headers (a receiver trickling one header byte
at a time cannot hold a slot longer), a total deadline, and a cap on the
response body read (only the status matters; past the cap the connection is
closed). Which events are delivered when, fairly across tenants, is
`drift_notifier.delivery`.
"""

from __future__ import annotations

import asyncio
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

from drift_notifier.config import WebhookLimits
from drift_notifier.states import decode_event
from drift_runtime.messaging import TransientFault, delivery_count
from drift_runtime.ssrf import Guard, SsrfRefused, Target
from drift_runtime.telemetry import inject_headers
from drift_schema.api import WorkflowResponse
from drift_schema.events import WorkflowEvent
from drift_schema.headers import WEBHOOK_ID, WEBHOOK_SEQ, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP
from drift_schema.statuses import WorkflowStatus

log = structlog.get_logger("drift.notifier")
tracer = trace.get_tracer("drift.notifier.webhooks")

DELIVERED_STATUSES = frozenset(WorkflowStatus) - {WorkflowStatus.CREATED, WorkflowStatus.RUNNING}
MAX_ATTEMPTS = 25
BASE_DELAY_S = 1.0
MAX_DELAY_S = 300.0

deliveries = Counter("drift_webhook_deliveries_total", "Webhook attempts by outcome", ["outcome"])
response_bytes = Counter("drift_webhook_response_bytes_total", "Response body bytes read from webhook receivers")


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

    def __init__(self, http: httpx.AsyncClient, secret: str, guard: Guard, limits: WebhookLimits | None = None) -> None:
        self.http = http
        self.signer = Webhook(secret)
        self.guard = guard
        self.limits = limits or WebhookLimits()

    @staticmethod
    def wanted(event: WorkflowEvent) -> bool:
        """Whether this event is delivered as a webhook: a stable state of a run with a `callbackUrl`."""
        return event.callback_url is not None and event.workflow_status in DELIVERED_STATUSES

    async def handle(self, msg: Msg) -> None:
        """Deliver the webhook of one event message, its delivery count as the attempt number."""
        event = decode_event(msg)
        if self.wanted(event):
            await self.deliver(event, delivery_count(msg))

    async def deliver(self, event: WorkflowEvent, attempt: int) -> None:
        """One attempt at `event`'s webhook: returns when it is settled, raises TransientFault to retry later."""
        if event.callback_url is None:
            return
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
            WEBHOOK_ID: event.event_id,
            WEBHOOK_TIMESTAMP: str(int(now.timestamp())),
            WEBHOOK_SIGNATURE: self.signer.sign(event.event_id, now, body.decode()),
            # Deliveries run in parallel lanes and retries back off, so a run's webhooks can arrive out of
            # order (a retried WAITING after COMPLETED): receivers order a run's webhooks by this number.
            WEBHOOK_SEQ: str(event.seq),
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
            request = self.http.build_request(
                "POST", pinned_url(target), content=body, headers=inject_headers(headers), extensions=extensions
            )
            try:
                response = await self._exchange(request)
            except (httpx.HTTPError, WebhookTimeout) as error:
                span.record_exception(error)
                span.set_status(StatusCode.ERROR, type(error).__name__)
                self._retry_or_give_up(attempt, backoff_s(attempt), f"{type(error).__name__}: {error}", bound)
                return None
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(StatusCode.ERROR)
            return response

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        """Send `request` within the deadlines; read at most `max_response_bytes` of the answer, then close it.

        httpx's own read timeout applies to each socket read, so a receiver sending a byte every few
        seconds would never trip it: the header and total deadlines are wall-clock deadlines instead.
        Once the status line is in, the answer is settled by its status alone: the body is read only
        so that a small answer leaves its connection reusable, and a body that is too large, too slow
        (past the total deadline) or cut short is simply dropped with its connection.
        """
        limits = self.limits
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + limits.total_timeout_s
        try:
            async with asyncio.timeout(limits.header_timeout_s):
                response = await self.http.send(request, stream=True)
        except TimeoutError:
            raise WebhookTimeout(f"no response headers within {limits.header_timeout_s:g} s") from None
        read = 0
        try:
            async with asyncio.timeout_at(ends_at):
                # Raw bytes: a compressed body is never inflated, so the cap bounds memory too.
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= limits.max_response_bytes:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass
        finally:
            response_bytes.inc(read)
            # Closing an unfinished response drops its connection: the receiver stops sending.
            await response.aclose()
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


class WebhookTimeout(Exception):
    """An attempt ran past one of its deadlines (header or total); retried like any transport error."""


def http_client(limits: WebhookLimits | None = None) -> httpx.AsyncClient:
    """The webhook client: the connect deadline, a pool as large as the delivery concurrency, no redirects."""
    limits = limits or WebhookLimits()
    # The per-read timeout is only a backstop: the header and total deadlines are wall-clock ones (`_exchange`).
    timeout = httpx.Timeout(limits.total_timeout_s, connect=limits.connect_timeout_s)
    # A pool as large as the delivery slots never makes one delivery wait for another's connection.
    pool = httpx.Limits(max_connections=limits.concurrency, max_keepalive_connections=min(32, limits.concurrency))
    # Redirects are not followed: a redirect could lead past the SSRF guard.
    return httpx.AsyncClient(timeout=timeout, limits=pool, follow_redirects=False)
