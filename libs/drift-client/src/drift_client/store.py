"""`StoreClient`: the one client of the dsl-store's HTTP API, for services and people alike.

Every caller of the dsl-store goes through here: the gateway (test runs, the run-context store), the
dispatcher (pinning definitions, enums and traffic splits), the notifier (writing run contexts) and
the CLI (loading bundles, definition management). What each used to repeat by hand is done once:

- the bearer token (a tenant's API key, or the service token with the tenant in `X-Drift-Tenant`,
  set for the client or per call);
- timeouts, and retries of transient faults: a connection that could not be made is retried for
  every method (nothing was sent), a dropped connection or a 502/503/504 only for the idempotent
  methods, and no request that already waited out its timeout;
- problem+json answers raised as the typed errors of `drift_client.problems`, and no answer at all
  as `UnreachableError`;
- W3C trace context (`traceparent`) injected on every request with `opentelemetry-api` alone, so
  the dsl-store's spans join the caller's trace (a program with no tracer provider sends none).

`store_http` is the underlying httpx client, for code that speaks the routes itself (the CLI's
bundle loader); it has all of the above but the typed errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import httpx
import msgspec
from opentelemetry import propagate

from drift_client.client import BearerClient
from drift_client.problems import DriftError, UnavailableError, UnreachableError, raise_for_problem
from drift_schema import codec, headers
from drift_schema.api import Problem
from drift_schema.context import RunContext
from drift_schema.definitions import ImportResult, NodePage, NodeSummary, Validation, WorkflowPage, WorkflowSummary
from drift_schema.nodes import NodeDefinition
from drift_schema.traffic import TrafficSplit
from drift_schema.workflow import Bundle, WorkflowDefinition

__all__ = ["DEFAULT_RETRIES", "DEFAULT_TIMEOUT", "SERVICE_TIMEOUT", "DefinitionsClient", "StoreClient", "store_http"]

T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""For people and tools (bundle imports can take a while); services pass SERVICE_TIMEOUT."""
SERVICE_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
"""For the services' hops, which sit on a run's path: a slow store is a transient fault, not a wait."""
DEFAULT_RETRIES = 2
"""Attempts after the first, for a transient fault (see RetryingTransport)."""
RETRY_BACKOFF_S = 0.1
"""The wait before the first retry; it doubles for each further one."""
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRIED_STATUSES = frozenset({502, 503, 504})
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
"""Transport errors raised before the request left: safe to retry whatever the method."""


class RetryingTransport(httpx.AsyncBaseTransport):
    """Retries a request on a transient fault, at most `retries` times, with a doubling pause.

    A POST is retried only when it was never sent (the connection failed): a lost answer might
    hide a write that happened. An idempotent request is retried on a lost connection and on a
    502, 503 or 504 answer (a proxy's or the store's own "not now"), never after waiting out its
    timeout: the caller's wait stays bounded by one timeout (and the short pauses).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, retries: int) -> None:
        self.inner = inner
        self.retries = retries

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        idempotent = request.method in IDEMPOTENT
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self.inner.handle_async_request(request)
            except NOT_SENT:
                if last:
                    raise
            except httpx.TimeoutException:
                # Sent, and no answer in time: a retry would double the caller's wait on a store that is slow.
                raise
            except httpx.TransportError:
                if last or not idempotent:
                    raise
            else:
                if last or not idempotent or response.status_code not in RETRIED_STATUSES:
                    return response
                await response.aclose()
            await asyncio.sleep(RETRY_BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _inject_trace(request: httpx.Request) -> None:
    """Put the current trace context (`traceparent`, `tracestate`) on the request."""
    propagate.inject(request.headers)


def store_http(
    base_url: str,
    token: str,
    *,
    tenant: str | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    transport: httpx.AsyncBaseTransport | None = None,
    trust_env: bool = False,
) -> httpx.AsyncClient:
    """An httpx client for the dsl-store: bearer `token`, `tenant` in X-Drift-Tenant, retries, trace context.

    `trust_env` is off by default: the dsl-store is a neighbour, and an environment proxy must not
    intercept calls carrying the service token.
    """
    sent_headers = {headers.AUTHORIZATION: f"Bearer {token}"}
    if tenant is not None:
        sent_headers[headers.TENANT] = tenant
    inner = transport if transport is not None else httpx.AsyncHTTPTransport(trust_env=trust_env)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        headers=sent_headers,
        transport=RetryingTransport(inner, retries),
        event_hooks={"request": [_inject_trace]},
        trust_env=trust_env,
    )


class StoreClient(BearerClient):
    """The dsl-store's routes as typed async methods; use it as `async with` (or call `aclose`).

    Built with a tenant's API key it acts for that tenant. Built with the service token, the tenant
    goes in `X-Drift-Tenant`: for every call (`tenant=` here) or per call (the `tenant=` argument of
    the run-time reads). Errors raise the typed DriftErrors of `drift_client.problems`.
    """

    def __init__(self, base_url: str, token: str, **options: Any) -> None:
        """A client of the dsl-store at `base_url` with bearer `token`; `options` are those of `store_http`."""
        self.http = store_http(base_url, token, **options)

    # ------------------------------------------------- run-time reads and writes (services)

    async def workflow(
        self, definition_id: str, version: str, *, enriched: bool = False, tenant: str | None = None
    ) -> WorkflowDefinition | None:
        """A workflow definition at `version` (with its nodes inlined when `enriched`); None when it has none.

        A version that cannot exist (422) is None too: to a caller it is as absent as a 404.
        """
        params = [("version", version)]
        if enriched:
            params.append(("enrichNodeDefinition", "true"))
        content = await self._read(f"/workflowDefinition/{definition_id}", tenant, params, absent={404, 422})
        return None if content is None else self._decode(content, WorkflowDefinition)

    async def node(self, node_id: str, version: str, *, tenant: str | None = None) -> NodeDefinition | None:
        """A node definition at `version`; None when it has none (404, or 422 for a version that cannot exist)."""
        content = await self._read(f"/nodeDefinition/{node_id}", tenant, [("version", version)], absent={404, 422})
        return None if content is None else self._decode(content, NodeDefinition)  # type: ignore[arg-type]

    async def enums(self, *, tenant: str | None = None) -> dict[str, Any]:
        """The tenant's enum store (`$enums`); `{}` when it has none."""
        content = await self._read("/enums", tenant, None, absent={404})
        return {} if content is None else self._decode(content, dict[str, Any])

    async def traffic_split(self, definition_id: str, *, tenant: str | None = None) -> TrafficSplit | None:
        """The workflow's traffic split between published versions; None when it has no ACTIVE version."""
        content = await self._read(f"/workflowDefinition/{definition_id}/traffic", tenant, None, absent={404, 422})
        return None if content is None else self._decode(content, TrafficSplit)

    async def run_context(self, workflow_id: str, *, tenant: str | None = None) -> RunContext | None:
        """The run's last stable state kept in the run-context store; None when it holds none."""
        content = await self._read(f"/runs/{workflow_id}", tenant, None, absent={404})
        return None if content is None else self._decode(content, RunContext)

    async def put_run_context(self, record: RunContext, *, tenant: str | None = None) -> int | None:
        """Store one stable state of a run; answers the seq the store holds afterwards (higher: `record` was stale)."""
        response = await self._send(
            "PUT",
            f"/runs/{record.workflow_id}",
            content=codec.encode(record),
            headers=self._headers(tenant, json_body=True),
        )
        held = self._decode(response.content, dict[str, Any]).get("seq")
        return held if isinstance(held, int) else None

    # --------------------------------------------------- definition management (people, tools)

    async def list_workflows(
        self, *, prefix: str = "", page_size: int | None = None, page_token: str | None = None
    ) -> WorkflowPage:
        """One page of workflow definitions sorted by id."""
        params = _page_params(prefix, page_size, page_token)
        return await self._call("GET", "/workflowDefinition", WorkflowPage, params=params)

    async def list_nodes(
        self,
        *,
        prefix: str = "",
        node_type: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> NodePage:
        """One page of node definitions sorted by id, optionally of one type."""
        params = _page_params(prefix, page_size, page_token)
        if node_type:
            params.append(("type", node_type))
        return await self._call("GET", "/nodeDefinition", NodePage, params=params)

    async def all_workflows(self, *, prefix: str = "") -> AsyncIterator[WorkflowSummary]:
        """Every workflow definition, following the pages."""
        token: str | None = None
        while True:
            page = await self.list_workflows(prefix=prefix, page_size=500, page_token=token)
            for item in page.items:
                yield item
            if page.next_page_token is None:
                return
            token = page.next_page_token

    async def all_nodes(self, *, prefix: str = "", node_type: str | None = None) -> AsyncIterator[NodeSummary]:
        """Every node definition, following the pages."""
        token: str | None = None
        while True:
            page = await self.list_nodes(prefix=prefix, node_type=node_type, page_size=500, page_token=token)
            for item in page.items:
                yield item
            if page.next_page_token is None:
                return
            token = page.next_page_token

    async def delete_workflow(self, definition_id: str) -> None:
        """Delete a workflow definition and every version (NotFoundError when it does not exist)."""
        await self._call("DELETE", f"/workflowDefinition/{definition_id}", None)

    async def delete_node(self, definition_id: str) -> None:
        """Delete a node definition; ConflictError (naming the workflows) while one refers to it."""
        await self._call("DELETE", f"/nodeDefinition/{definition_id}", None)

    async def validate(self, workflow: Any) -> Validation:
        """Check a workflow definition (a dict or a WorkflowDefinition) as publishing would, storing nothing."""
        return await self._call("POST", "/workflowDefinition/validate", Validation, body=workflow)

    async def export(self, workflow_ids: list[str], *, version: str | None = None) -> Bundle:
        """A bundle of the workflows (LATEST by default) with every node and CHILD workflow they refer to."""
        return msgspec.json.decode(await self.export_raw(workflow_ids, version=version), type=Bundle)

    async def export_raw(self, workflow_ids: list[str], *, version: str | None = None) -> bytes:
        """The exported bundle as the server wrote it (JSON bytes), for writing to a file."""
        params = [("workflowId", workflow_id) for workflow_id in workflow_ids]
        if version:
            params.append(("version", version))
        return (await self._send("GET", "/bundle", params=tuple(params))).content

    async def import_bundle(self, bundle: Any, *, publish: bool = False, activate: bool = False) -> ImportResult:
        """Import a bundle (dict, Bundle or JSON bytes) all or nothing; InvalidError with pointers when invalid."""
        params = [("publish", str(publish).lower()), ("activate", str(activate).lower())]
        return await self._call("POST", "/bundle", ImportResult, body=bundle, params=params)

    # ------------------------------------------------------------------------ plumbing

    @staticmethod
    def _headers(tenant: str | None, *, json_body: bool = False) -> dict[str, str]:
        sent = {headers.TENANT: tenant} if tenant is not None else {}
        if json_body:
            sent["Content-Type"] = "application/json"
        return sent

    async def _send(self, method: str, path: str, **request: Any) -> httpx.Response:
        """One request; a 2xx answer, or the typed DriftError (UnreachableError when nothing answered)."""
        try:
            response = await self.http.request(method, path, **request)
        except httpx.TransportError as error:
            raise UnreachableError(_url_of(error, self.http), error) from error
        raise_for_problem(response)
        return response

    async def _read(
        self, path: str, tenant: str | None, params: list[tuple[str, str]] | None, *, absent: set[int]
    ) -> bytes | None:
        """A GET's body; None when the store answers one of the `absent` statuses."""
        try:
            response = await self._send("GET", path, params=tuple(params or ()), headers=self._headers(tenant))
        except DriftError as error:
            if error.status in absent:
                return None
            raise
        return response.content

    @staticmethod
    def _decode(content: bytes, into: type[T]) -> T:
        """An answer's body as `into`; a body that does not match is the store's fault: UnavailableError (502)."""
        try:
            return codec.decode(content, into)
        except codec.DecodeError as error:
            raise UnavailableError(
                Problem(title="Bad Gateway", status=502, detail=f"the dsl-store's answer does not decode: {error}")
            ) from None

    async def _call(
        self,
        method: str,
        path: str,
        into: type[T] | None,
        body: Any = None,
        params: list[tuple[str, str]] | None = None,
    ) -> T:
        content = body if isinstance(body, bytes) else None if body is None else msgspec.json.encode(body)
        response = await self._send(
            method,
            path,
            content=content,
            params=tuple(params or []),
            headers=self._headers(None, json_body=content is not None),
        )
        if into is None:
            return None  # type: ignore[return-value]
        return msgspec.json.decode(response.content, type=into)


DefinitionsClient = StoreClient
"""The name StoreClient had when it served only the definition management routes."""


def _url_of(error: httpx.TransportError, http: httpx.AsyncClient) -> str:
    """The URL a transport error was for (the client's base URL if it has no request)."""
    try:
        return str(error.request.url)
    except RuntimeError:  # raised before a request was attached
        return str(http.base_url)


def _page_params(prefix: str, page_size: int | None, page_token: str | None) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if prefix:
        params.append(("prefix", prefix))
    if page_size is not None:
        params.append(("pageSize", str(page_size)))
    if page_token:
        params.append(("pageToken", page_token))
    return params
