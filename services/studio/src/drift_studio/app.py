"""The Studio application: the built front end, a same-origin API proxy, and a run's live events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import structlog
from litestar import Litestar, Request, Response, get, route
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import HttpMethod
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath
from litestar.response import Stream
from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeout

from drift_runtime import messaging
from drift_runtime.auth import bearer_token
from drift_runtime.web import (
    EXCEPTION_HANDLERS,
    MAX_BODY_BYTES,
    NotFound,
    TooManyRequests,
    Unavailable,
    health_handlers,
    http_metrics,
    serve,
)
from drift_schema import subjects
from drift_schema.ids import is_workflow_id
from drift_studio.config import Settings
from drift_studio.proxy import Proxy
from drift_studio.static import SECURITY_HEADERS, StaticSite

log = structlog.get_logger("drift.studio")

FEED_RETRY_AFTER_S = 5
"""`Retry-After` of a live feed refused because the tenant holds as many as it may."""
_METHODS = [HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.DELETE, HttpMethod.PATCH]


class Session(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`GET /api/session`: the tenant the presented key names."""

    tenant: str


class Services:
    """What the handlers share: the proxy, the NATS connection, the keys, the site."""

    def __init__(self, settings: Settings, proxy: Proxy, nats: NatsClient | None, site: StaticSite) -> None:
        self.settings = settings
        self.proxy = proxy
        self.nats = nats
        self.site = site
        self.feeds: dict[str, int] = {}
        """Open live feeds per tenant: one tenant cannot hold the Studio's connections for everyone."""

    def tenant_of(self, request: Request[Any, Any, Any]) -> str:
        """The tenant of the request's bearer key; 401 without a known one."""
        token = bearer_token(request.headers.get("authorization"))
        tenant = self.settings.api_keys.tenant_for(token) if token else None
        if tenant is None:
            raise NotAuthorizedException("missing or unknown bearer token")
        return tenant


Shared = NamedDependency[Services]
"""The handlers' `services` dependency, provided by `create_app`."""


@get("/api/session", summary="The tenant of the presented API key (sign-in check)")
async def session(request: Request[Any, Any, Any], services: Shared) -> Session:
    return Session(tenant=services.tenant_of(request))


@route("/api/gateway/{path:path}", http_method=_METHODS, summary="The gateway, same-origin, with the caller's key")
async def gateway_proxy(request: Request[Any, Any, Any], services: Shared, path: FromPath[str]) -> Response[bytes]:
    return await services.proxy.forward(request, services.settings.gateway_url, path)


@route("/api/dsl/{path:path}", http_method=_METHODS, summary="The dsl-store, same-origin, with the caller's key")
async def dsl_proxy(request: Request[Any, Any, Any], services: Shared, path: FromPath[str]) -> Response[bytes]:
    return await services.proxy.forward(request, services.settings.dsl_store_url, path)


@get("/api/runs/{workflow_id:str}/events", summary="A run's node and status events as server-sent events")
async def run_events(request: Request[Any, Any, Any], services: Shared, workflow_id: FromPath[str]) -> Stream:
    """Live events of one run of the caller's tenant.

    The tenant comes from the caller's key, and the run must answer the gateway with that same
    key, so a key never subscribes to another tenant's subjects nor learns that a run exists there.
    """
    tenant = services.tenant_of(request)
    if not is_workflow_id(workflow_id):
        raise NotFound(f"workflow '{workflow_id}' not found")
    await services.proxy.require_run(request, services.settings.gateway_url, workflow_id)
    if services.nats is None or not services.nats.is_connected:
        raise Unavailable("live events are unavailable (NATS); retry shortly")
    if services.feeds.get(tenant, 0) >= services.settings.max_feeds_per_tenant:
        limit = services.settings.max_feeds_per_tenant
        raise TooManyRequests(f"at most {limit} live feeds per tenant; close one", retry_after_s=FEED_RETRY_AFTER_S)
    subscription = await services.nats.subscribe(subjects.run_events(tenant, workflow_id), pending_msgs_limit=4096)
    heartbeat = services.settings.heartbeat_s
    log.info("studio.live_opened", tenant=tenant, workflow_id=workflow_id, open_feeds=services.feeds.get(tenant, 0))

    async def events() -> AsyncIterator[bytes]:
        # Counted from the first byte on: a feed that never starts streaming holds nothing.
        services.feeds[tenant] = services.feeds.get(tenant, 0) + 1
        try:
            # Subscribed before this is sent: a client that (re)loads the state after `ready` misses nothing.
            yield b"event: ready\ndata: {}\n\n"
            while True:
                try:
                    message = await subscription.next_msg(timeout=heartbeat)
                except NatsTimeout:
                    yield b": keep-alive\n\n"
                    continue
                try:
                    payload = msgspec.json.decode(message.data)
                except msgspec.DecodeError:
                    continue
                # The subject names the tenant already; the payload must agree, or it is not shown.
                if not isinstance(payload, dict) or payload.get("tenant") != tenant:
                    continue
                kind = "node" if ".evt.node." in message.subject else "workflow"
                yield b"event: " + kind.encode() + b"\ndata: " + msgspec.json.encode(payload) + b"\n\n"
        finally:
            services.feeds[tenant] -= 1
            await subscription.unsubscribe()
            log.info("studio.live_closed", tenant=tenant, workflow_id=workflow_id)

    return Stream(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@get("/", include_in_schema=False)
async def index(services: Shared) -> Response[bytes]:
    """The single-page app's index."""
    return services.site.serve("/")


@get("/{page:path}", include_in_schema=False)
async def site(services: Shared, page: FromPath[str]) -> Response[bytes]:
    """A built asset, or the single-page app's index for every page path (`/runs/x`, `/tasks`, ...)."""
    return services.site.serve(page or "/")


def create_app(settings: Settings) -> Litestar:
    """The Studio; it connects to NATS in its lifespan (the live feed needs it, nothing else does)."""
    site_files = StaticSite(settings.static_dir)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        client = httpx.AsyncClient(timeout=settings.proxy_timeout_s, follow_redirects=False)
        nats: NatsClient | None = None
        try:
            nats = await asyncio.wait_for(messaging.connect(settings.nats_url, name="drift-studio"), 10)
        except Exception as error:
            # The pages and the proxy work without NATS; only the live feed waits for it.
            log.warning("studio.nats_unavailable", reason=str(error))
        app.state.services = Services(settings, Proxy(client), nats, site_files)
        log.info("studio.started", port=settings.port, built=site_files.built)
        try:
            yield
        finally:
            await client.aclose()
            if nats is not None:
                await nats.drain()

    def services(state: State) -> Services:
        return state.services  # type: ignore[no-any-return]

    async def ready() -> bool:
        current: Services | None = getattr(app.state, "services", None)
        return current is not None and site_files.built and current.nats is not None and current.nats.is_connected

    async def secure(response: Response[Any]) -> Response[Any]:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app = Litestar(
        route_handlers=[session, gateway_proxy, dsl_proxy, run_events, index, site, *health_handlers(ready)],
        dependencies={"services": Provide(services, sync_to_thread=False)},
        lifespan=[lifespan],
        after_request=secure,
        middleware=[http_metrics("drift-studio")],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,
    )
    return app


def main() -> None:
    """Run the Studio with uvicorn on `DRIFT_BIND_HOST:DRIFT_STUDIO_PORT`."""
    settings = Settings.from_env()
    serve(
        create_app(settings), "drift-studio", settings.bind_host, settings.port, settings.log_format, settings.log_level
    )
