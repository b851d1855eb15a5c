"""The HTTP node's activity: one shared httpx client behind the SSRF guard, credentials from plugins.

Credentials stay on their origin. A header is secret when it is `Authorization`,
`Cookie` or `Proxy-Authorization`, when a token provider added it, when the
definition lists it in `request.secretHeaders`, or when its value is a secret
reference (`{"secret": "name"}`, resolved for the run's tenant by the token
providers that are `SecretSource`s). A redirect to another origin (scheme, host
or port) drops every secret header; a secret value never appears in a failure
message or a log line.

Failure kinds, as Temporal sees them:
- a non-2xx answer or a transport error: retryable (`HttpStatus`, `HttpError`), so the
  node's retry policy applies and the node fails only after its last attempt;
- a refused call (SSRF guard), an oversized answer, or a failing expression:
  `NodeFailed`, never retried, because another attempt would fail the same way.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import structlog
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from temporalio import activity
from temporalio.exceptions import ApplicationError

from drift_runtime.telemetry import inject_headers
from drift_schema import expressions
from drift_schema.nodes import HttpNode
from drift_worker.activities import Limits, failing_node, node_failed, publish_node_event
from drift_worker.evaluator import HTTP_PREPARE, HTTP_RESPOND, EvaluatorPool
from drift_worker.fairness import TenantSlots, default_tenant_slots
from drift_worker.model import HTTP_ERROR, HTTP_STATUS, NodeResult, NodeTask
from drift_worker.nodes.http import FORM, HTTP_ACTIVITY, JSON, Http, HttpCall
from drift_worker.ssrf import SsrfRefused, check_scheme
from drift_worker.tokens import SecretError, SecretRef, TokenProvider, check_secret_name, resolve_secret

log = structlog.get_logger("drift.worker.http")
tracer = trace.get_tracer("drift.worker.http")

IDEMPOTENCY_HEADER = "Idempotency-Key"
TOKEN_PROVIDER_TIMEOUT_S = 10.0
# The activity's own deadline is a little shorter than Temporal's, so a slow call fails with a clear message.
DEADLINE_SHARE = 0.9
_IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0d6a43-6a4b-4d4e-9a38-8f3c2f6d0d11")
_HTTP = Http()
ALWAYS_SECRET = frozenset({"authorization", "cookie", "proxy-authorization"})
"""Headers that never follow a redirect to another origin, whoever set them."""
REDACTED = "[secret]"
# Line breaks and control characters: the HTTP library refuses them with the value in its message.
_UNSENDABLE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class ResponseTooLarge(Exception):
    """An answer over the configured size cap."""


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Knobs of outgoing calls."""

    max_response_bytes: int = 1024 * 1024
    max_redirects: int = 5


def idempotency_key(task: NodeTask) -> str:
    """Stable across retries of one visit: derived from the run chain's first run id and the visit number."""
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, task.event_id))


def _encode_body(call: HttpCall) -> dict[str, Any]:
    if call.body is None:
        return {}
    media = (call.content_type or "").split(";", 1)[0].strip().lower()
    if media == FORM:
        if not isinstance(call.body, dict):
            raise expressions.ExpressionError("request/body: a form body must be an object")
        return {"content": urlencode(call.body, doseq=True).encode()}
    if media == JSON or media.endswith("+json"):
        return {"content": msgspec.json.encode(call.body)}
    text = call.body if isinstance(call.body, str) else msgspec.json.encode(call.body).decode()
    return {"content": text.encode()}


def _parse_body(response: httpx.Response, raw: bytes) -> Any:
    if not raw:
        return None
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == JSON or media.endswith("+json"):
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError:
            pass
    return raw.decode(response.encoding or "utf-8", errors="replace")


def _headers(response: httpx.Response) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    # httpx.URL already reads a scheme's default port as None, so http://h and http://h:80 compare equal.
    return url.scheme, url.host, url.port


def secret_references(task: NodeTask) -> tuple[NodeTask, dict[str, SecretRef]]:
    """The task without the secret references among its literal headers, and those references by header.

    The references are taken out before rendering, so the evaluator never sees them and the
    request it renders holds no placeholder; only a literal header object is read, never one
    an expression builds, so a secret's name is always written in the definition.
    """
    node = task.node
    assert isinstance(node, HttpNode)
    headers = node.request.headers
    if not isinstance(headers, dict):
        return task, {}
    plain: dict[str, Any] = {}
    references: dict[str, SecretRef] = {}
    for name, value in headers.items():
        if not (isinstance(value, dict) and "secret" in value):
            plain[name] = value
            continue
        try:
            reference = msgspec.convert(value, SecretRef)
            check_secret_name(reference.secret)
        except msgspec.ValidationError as error:
            raise SecretError(
                f"request/headers/{name}: a secret reference is {{'secret': name, 'prefix': text}} ({error})"
            ) from None
        except SecretError as error:
            raise SecretError(f"request/headers/{name}: {error}") from None
        references[str(name)] = reference
    if not references:
        return task, {}
    request = msgspec.structs.replace(node.request, headers=plain)
    return msgspec.structs.replace(task, node=msgspec.structs.replace(node, request=request)), references


def redact(text: str, values: Collection[str]) -> str:
    """`text` with every secret value in it replaced by a marker, longest first (one may contain another)."""
    for value in sorted(values, key=len, reverse=True):
        if value:
            text = text.replace(value, REDACTED)
    return text


def _unsendable(headers: httpx.Headers) -> str | None:
    return next((name.decode("latin-1") for name, value in headers.raw if _UNSENDABLE.search(value)), None)


def _carry_headers(previous: httpx.Request, redirect: httpx.Request, secret_headers: Collection[str]) -> None:
    """Fix the headers httpx chose for a redirect: secrets stay on their origin, a same-origin Cookie stays."""
    # httpx replaces Cookie on every hop with its own jar's (which holds nothing: see `guarded_client`) and
    # keeps Authorization on an http-to-https upgrade; the definition's Cookie is sent on its origin only.
    redirect.headers.pop("Cookie", None)
    if _origin(redirect.url) == _origin(previous.url):
        cookie = previous.headers.get("Cookie")
        if cookie is not None:
            redirect.headers["Cookie"] = cookie
        return
    for name in ALWAYS_SECRET.union(secret_headers):
        redirect.headers.pop(name, None)


def span_url(url: httpx.URL) -> str:
    """`url` as a span may show it: no userinfo, query or fragment, since those may hold secrets."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.path or '/'}"


def _span_attributes(request: httpx.Request) -> dict[str, str | int]:
    url = request.url
    attributes: dict[str, str | int] = {
        "http.request.method": request.method,
        "url.full": span_url(url),
        "server.address": url.host,
    }
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    if port is not None:
        attributes["server.port"] = port
    return attributes


def _record_answer(span: Span, response: httpx.Response) -> None:
    span.set_attribute("http.response.status_code", response.status_code)
    if response.status_code >= 400:
        span.set_status(StatusCode.ERROR)


class HttpActivities:
    """Runs HTTP nodes: renders the request, adds credentials, calls, renders the output.

    `client` must be a `guarded_client`: the SSRF guard lives in its network backend.
    """

    def __init__(
        self,
        js: JetStreamContext,
        client: httpx.AsyncClient,
        providers: Sequence[TokenProvider] = (),
        limits: Limits = Limits(),
        settings: HttpSettings = HttpSettings(),
        pool: EvaluatorPool | None = None,
        slots: TenantSlots | None = None,
    ) -> None:
        self.js = js
        # One tenant's hanging endpoints may hold only its share of the worker's activity slots.
        self.slots = slots if slots is not None else TenantSlots(default_tenant_slots(100))
        self.client = client
        self.providers = list(providers)
        self.limits = limits
        self.settings = settings
        self.pool = pool if pool is not None else EvaluatorPool()

    @activity.defn(name=HTTP_ACTIVITY)
    async def http_node(self, task: NodeTask) -> NodeResult:
        """One attempt of one HTTP node visit, within its tenant's share of the worker's slots."""
        with self.slots.hold(task.tenant):
            return await self._http_node(task)

    async def _http_node(self, task: NodeTask) -> NodeResult:
        bounds = self.limits.bounds
        try:
            with failing_node("rendering the request"):
                plain, references = secret_references(task)
                # Rendered in the evaluator pool, bounded in time and memory like every node's expressions.
                prepared = await self.pool.evaluate(HTTP_PREPARE, plain, bounds, self.limits.max_output_bytes, 0)
                call = HttpCall(**prepared.output)
                content = _encode_body(call)
        except SecretError as error:
            raise node_failed(str(error)) from None
        secrets = await self._secrets(task.tenant, references)
        credentials = await self._credentials(task)
        # httpx.Headers: a provider's `Authorization` replaces the definition's `authorization`, not joins it.
        headers = httpx.Headers(call.headers)
        for name, value in [*secrets.items(), *credentials.items(), (IDEMPOTENCY_HEADER, idempotency_key(task))]:
            headers[name] = value
        if call.content_type and content:
            headers.setdefault("Content-Type", call.content_type)
        node = task.node
        assert isinstance(node, HttpNode)
        secret_headers = frozenset(
            name.lower() for name in [*node.request.secret_headers, *secrets, *credentials]
        ).union(ALWAYS_SECRET)
        hidden = {value for name, value in headers.items() if name in secret_headers}
        if (unsendable := _unsendable(headers)) is not None:
            raise node_failed(
                f"request/headers/{unsendable}: a header value may not hold a line break or control character"
            )
        deadline = activity.info().start_to_close_timeout
        budget = deadline.total_seconds() * DEADLINE_SHARE if deadline else 30.0
        try:
            async with asyncio.timeout(budget):
                response, raw = await self._exchange(call, headers, secret_headers, budget, content)
        except httpx.InvalidURL as error:
            raise node_failed(f"request/url: {error}") from None
        except SsrfRefused as refusal:
            log.warning("worker.http_refused", workflow_id=task.workflow_id, node=task.instance, reason=str(refusal))
            raise node_failed(str(refusal)) from None
        except ResponseTooLarge as error:
            raise node_failed(str(error)) from None
        except TimeoutError:
            raise self._retryable(f"{call.method} {call.url} timed out after {budget:.1f}s", HTTP_ERROR) from None
        except httpx.HTTPError as error:
            # A transport error may quote what was sent.
            raise self._retryable(redact(f"{call.method} {call.url} failed: {error}", hidden), HTTP_ERROR) from None
        if not 200 <= response.status_code < 300:
            raise self._retryable(f"{call.method} {call.url} answered HTTP {response.status_code}", HTTP_STATUS)
        answer = {"status": response.status_code, "headers": _headers(response), "body": _parse_body(response, raw)}
        with failing_node("evaluating 'output'"):
            responded = await self.pool.evaluate(
                HTTP_RESPOND, task, bounds, self.limits.max_output_bytes, 0, response=answer
            )
        output = responded.output
        await publish_node_event(self.js, task, "COMPLETED", output)
        return NodeResult(output=output)

    @staticmethod
    def _retryable(message: str, kind: str) -> ApplicationError:
        return ApplicationError(message, activity.info().attempt, type=kind)

    async def _secrets(self, tenant: str, references: Mapping[str, SecretRef]) -> dict[str, str]:
        """The referenced secrets of `tenant` as header values; only that tenant's are ever looked up."""
        headers: dict[str, str] = {}
        for name, reference in references.items():
            try:
                async with asyncio.timeout(TOKEN_PROVIDER_TIMEOUT_S):
                    headers[name] = reference.prefix + await resolve_secret(self.providers, tenant, reference.secret)
            except SecretError as error:
                # Missing or unusable: another attempt would fail the same way, until someone sets it.
                raise node_failed(f"request/headers/{name}: {error}") from None
            except Exception as error:
                # A secret store outage may pass, as a token provider's.
                raise self._retryable(f"secret store failed: {error}", HTTP_ERROR) from None
        return headers

    async def _credentials(self, task: NodeTask) -> dict[str, str]:
        headers: dict[str, str] = {}
        for provider in self.providers:
            try:
                async with asyncio.timeout(TOKEN_PROVIDER_TIMEOUT_S):
                    headers.update(await provider.headers(task.tenant, task.node.id))
            except Exception as error:
                # A provider outage may pass: let the node's retry policy try again.
                raise self._retryable(f"token provider failed: {error}", HTTP_ERROR) from None
        return headers

    async def _exchange(
        self,
        call: HttpCall,
        headers: Mapping[str, str],
        secret_headers: Collection[str],
        budget: float,
        content: dict[str, Any],
    ) -> tuple[httpx.Response, bytes]:
        """Send, following redirects hop by hop (each connect is guarded); credentials stay on their origin.

        `secret_headers` (besides `ALWAYS_SECRET`) are dropped on the first hop to another origin and
        never come back, even on a later hop back to the first origin.
        """
        # Checked before build_request: httpx reads a non-http URL as a path relative to no base.
        check_scheme(httpx.URL(call.url))
        request = self.client.build_request(
            call.method,
            call.url,
            params=call.query or None,
            headers=headers,
            timeout=httpx.Timeout(budget),
            **content,
        )
        for hop in range(self.settings.max_redirects + 1):
            # A client span per hop, as httpx instrumentation would make (it is not a dependency), and
            # the callee joins the trace through `traceparent`; set here so a redirect gets its own span's.
            with tracer.start_as_current_span(
                request.method,
                kind=SpanKind.CLIENT,
                attributes=_span_attributes(request),
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                request.headers.update(inject_headers())
                try:
                    response = await self.client.send(request, stream=True)
                    _record_answer(span, response)
                    try:
                        redirect = response.next_request if hop < self.settings.max_redirects else None
                        if redirect is None:
                            return response, await self._read(response)
                    finally:
                        await response.aclose()
                except BaseException as error:
                    # BaseException too: a timeout reaches the call as a cancellation.
                    span.record_exception(error)
                    span.set_status(StatusCode.ERROR, type(error).__name__)
                    raise
            _carry_headers(request, redirect, secret_headers)
            check_scheme(redirect.url)
            request = redirect
        raise AssertionError("unreachable: the last hop always returns")

    async def _read(self, response: httpx.Response) -> bytes:
        cap = self.settings.max_response_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise ResponseTooLarge(f"response of {declared} bytes is over the limit of {cap} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise ResponseTooLarge(f"response is over the limit of {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
