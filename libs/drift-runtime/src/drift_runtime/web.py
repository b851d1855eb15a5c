"""Litestar plumbing shared by the HTTP services: auth, problem details, health, metrics, tracing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
import uvicorn
from litestar import Litestar, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.authentication import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import ReceiveRoutePlugin
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.plugins.prometheus import PrometheusConfig
from litestar.routes import BaseRoute, HTTPRoute
from litestar.types import (
    ASGIApp,
    ControllerRouterHandler,
    Dependencies,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)
from prometheus_client import CONTENT_TYPE_LATEST

from drift_runtime import metrics
from drift_runtime.auth import ApiKeys, bearer_token
from drift_runtime.logging import configure_logging
from drift_runtime.metrics import render
from drift_runtime.openapi import DriftStructSchemaPlugin, document_request_bodies
from drift_runtime.swagger import ASSETS_PATH, swagger_assets
from drift_runtime.telemetry import setup_tracing, shutdown_tracing
from drift_schema.api import Problem, ProblemError
from drift_schema.ids import is_tenant

log = structlog.get_logger("drift.web")

MAX_BODY_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 8 * 1024
"""The longest one request header may be (name and value); a longer one answers 431."""
MAX_HEADERS_TOTAL_BYTES = 32 * 1024
"""The most all request headers together may hold; more answers 431."""
MAX_CALLER_HEADER_CHARS = 256
"""The longest `X-Client-Id` / `X-User-Id` may be: they are kept in every run's threadContext."""
CALLER_HEADERS = (b"x-client-id", b"x-user-id")
PROBLEM_JSON = "application/problem+json"
PUBLIC_PATHS = ["^/health/", "^/metrics", "^/schema"]
TENANT_HEADER = "X-Drift-Tenant"


class DriftProblem(Exception):
    """An error answered as RFC 9457 problem details; services subclass it in their errors.py."""

    status: int = 500
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        errors: list[ProblemError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    def __init_subclass__(cls, status: int | None = None, title: str | None = None, **kwargs: Any) -> None:
        # A subclass may name its status and title in its class line (`class NotFound(DriftProblem, status=404, ...)`).
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if title is not None:
            cls.title = title

    def to_problem(self) -> Problem:
        return Problem(title=self.title, status=self.status, detail=self.detail, errors=self.errors)


class BadRequest(DriftProblem, status=400, title="Bad Request"):
    """A query parameter that cannot be used (a bad page token, a page size out of bounds)."""


class Forbidden(DriftProblem, status=403, title="Forbidden"):
    """The caller is authenticated but may not use this route."""


class NotFound(DriftProblem, status=404, title="Not Found"):
    """Something that does not exist for this tenant (another tenant's looks exactly the same)."""


class Conflict(DriftProblem, status=409, title="Conflict"):
    """The request contradicts the current state (an id taken, a run not waiting)."""


class Invalid(DriftProblem, status=422, title="Unprocessable Content"):
    """A body or value that does not validate; `errors` carry JSON pointers."""


class Unavailable(DriftProblem, status=503, title="Service Unavailable"):
    """A dependency does not answer; `Retry-After` says when to try again."""

    def __init__(self, detail: str | None = None, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class TooManyRequests(DriftProblem, status=429, title="Too Many Requests"):
    """The tenant is over one of its limits; `Retry-After` says when to try again."""

    def __init__(self, detail: str | None = None, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after_s))})


def oversized_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Why these request headers are refused (the limits above), or None when they are within them."""
    total = 0
    for name, value in headers:
        size = len(name) + len(value)
        total += size
        if size > MAX_HEADER_BYTES:
            return f"each request header is limited to {MAX_HEADER_BYTES} bytes"
        if name.lower() in CALLER_HEADERS and len(value) > MAX_CALLER_HEADER_CHARS:
            return f"X-Client-Id and X-User-Id are limited to {MAX_CALLER_HEADER_CHARS} bytes"
    if total > MAX_HEADERS_TOTAL_BYTES:
        return f"request headers are limited to {MAX_HEADERS_TOTAL_BYTES} bytes in all"
    return None


class HeaderLimits:
    """ASGI middleware answering 431 problem+json to a request whose headers are over the limits.

    It runs before authentication, so a 50 MB `Authorization` header is never compared with a key,
    and an oversized `X-User-Id` never reaches a run's threadContext. (The server has read the
    headers by then; the limit bounds what Drift keeps and works on, not the socket.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reason = oversized_header(scope["headers"])
            if reason is not None:
                log.info("http.headers_refused", path=scope.get("path", ""), reason=reason)
                body = msgspec.json.encode(
                    {"type": "about:blank", "title": "Request Header Fields Too Large", "status": 431, "detail": reason}
                )
                start: HTTPResponseStartEvent = {
                    "type": "http.response.start",
                    "status": 431,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
                end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
                await send(start)
                await send(end)
                return
        await self.app(scope, receive, send)


def header_limits() -> DefineMiddleware:
    """The header-size middleware; list it before `auth_middleware`."""
    return DefineMiddleware(HeaderLimits)


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[bytes]:
    # Problem omits defaults, but RFC 9457 bodies (and contract 2) always carry `type`.
    body = {"type": problem.type, **msgspec.to_builtins(problem)}
    return Response(
        content=msgspec.json.encode(body),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _drift_problem_handler(_: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    assert isinstance(error, DriftProblem)
    return problem_response(error.to_problem(), error.headers)


def _http_exception_handler(_: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    assert isinstance(error, HTTPException)
    errors = None
    extra = error.extra
    if isinstance(extra, list):
        errors = [
            ProblemError(pointer=_pointer_of(item), message=str(item.get("message", "")))
            for item in extra
            if isinstance(item, dict)
        ] or None
    title = {
        401: "Unauthorized",
        404: "Not Found",
        405: "Method Not Allowed",
        413: "Request Entity Too Large",
        429: "Too Many Requests",
        431: "Request Header Fields Too Large",
    }.get(error.status_code, "Bad Request" if error.status_code < 500 else "Internal Server Error")
    headers = dict(error.headers or {})
    detail = error.detail
    if error.status_code == 413:
        detail = f"request bodies are limited to {MAX_BODY_BYTES} bytes"
    if error.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem_response(Problem(title=title, status=error.status_code, detail=detail, errors=errors), headers)


def _pointer_of(item: dict[str, Any]) -> str:
    key = item.get("key")
    return f"/{key}" if key else ""


def _unexpected_handler(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    log.exception("http.unhandled_error", path=request.url.path)
    return problem_response(Problem(title="Internal Server Error", status=500, detail="unexpected error"))


EXCEPTION_HANDLERS: dict[Any, Callable[..., Response[Any]]] = {
    DriftProblem: _drift_problem_handler,
    HTTPException: _http_exception_handler,
    Exception: _unexpected_handler,
}


@dataclass(frozen=True)
class Tenant:
    """The authenticated caller: the tenant its token names."""

    name: str


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates every non-public route by bearer key.

    A service-to-service call presents `DRIFT_SERVICE_TOKEN` and names the
    tenant it acts for in `X-Drift-Tenant`.
    """

    def __init__(self, app: ASGIApp, keys: ApiKeys, service_token: str | None, exclude: list[str]) -> None:
        super().__init__(app, exclude=exclude)
        self.keys = keys
        self.service = ApiKeys({service_token: "_service"}) if service_token else None

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        token = bearer_token(connection.headers.get("authorization"))
        if token is None:
            raise NotAuthorizedException("missing bearer token")
        tenant = self.keys.tenant_for(token)
        if tenant is None and self.service is not None and self.service.tenant_for(token):
            tenant = connection.headers.get(TENANT_HEADER)
            # The header is caller-supplied text that ends up in subjects and keys: only tenant names pass.
            if tenant is not None and not is_tenant(tenant):
                raise NotAuthorizedException("invalid X-Drift-Tenant")
        if not tenant:
            raise NotAuthorizedException("unknown bearer token")
        structlog.contextvars.bind_contextvars(tenant=tenant)
        return AuthenticationResult(user=Tenant(tenant), auth=None)


def auth_middleware(keys: ApiKeys, service_token: str | None = None) -> DefineMiddleware:
    return DefineMiddleware(BearerAuthMiddleware, keys=keys, service_token=service_token, exclude=PUBLIC_PATHS)


def openapi_config(title: str, version: str = "1.0.0") -> OpenAPIConfig:
    """OpenAPI at `/schema`, bearer-secured, its Swagger page loading every asset from the app's own
    `swagger.swagger_assets()` route (none from a CDN, so it works offline).

    Built in one go: `dataclasses.replace` on an OpenAPIConfig re-runs its deprecation checks on the
    defaults the first construction filled in, and Litestar warns about attributes nobody set.
    """
    swagger_page = SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title=title,
        version=version,
        path="/schema",
        render_plugins=[swagger_page],
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")},
        ),
        security=[{"bearer": []}],
    )


PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "The request could not be read (a malformed parameter)",
    401: "No bearer token, or one naming no tenant (`WWW-Authenticate: Bearer`)",
    403: "The caller may not use this route",
    404: "Not found for this tenant (another tenant's looks exactly the same)",
    409: "The request contradicts the current state",
    413: f"The body is over {MAX_BODY_BYTES} bytes",
    422: "The body or a value does not validate; `errors` carry JSON pointers",
    429: "The tenant is over a limit (starts per second, open sync calls, concurrent runs); retry after `Retry-After`",
    431: (
        f"A request header is over {MAX_HEADER_BYTES} bytes, all of them over {MAX_HEADERS_TOTAL_BYTES}, "
        f"or X-Client-Id / X-User-Id over {MAX_CALLER_HEADER_CHARS}"
    ),
    503: "A dependency does not answer; retry after `Retry-After` seconds",
}
"""The error statuses Drift answers, every one as `application/problem+json` (see `problem_response`)."""
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BODIES = frozenset({"POST", "PUT", "PATCH"})


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI answers for `statuses`, each the one `Problem` schema as `application/problem+json`.

    For a handler's `responses=` when it answers a status the defaults of `ProblemResponses` leave out.
    """
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=PROBLEM_DESCRIPTIONS[status],
            generate_examples=False,
        )
        for status in statuses
    }


class ProblemResponses(ReceiveRoutePlugin):
    """Documents the problem answers of every route, so that no handler has to list them.

    Litestar 2 has no app- or controller-level `responses`, and would document only each
    handler's success status and a generic 400 `application/json` body that Drift never sends
    (`_http_exception_handler` answers problem+json). Each operation gets 400, 401, 422, 431 and
    503 (query parameters and headers can be refused anywhere), 404 where it takes a path parameter
    or a body, writes add 409, and methods with a body 413; a handler's own `responses` win.
    """

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            methods = set(handler.http_methods)
            # Any request can carry a malformed query string or a value that does not validate.
            statuses = [400, 401, 422, 431, 503]
            if route.path_parameters or methods & _BODIES:
                statuses.append(404)
            if methods & _WRITES:
                statuses.append(409)
            if methods & _BODIES:
                statuses.append(413)
            handler.responses = {**problem_responses(*sorted(statuses)), **(handler.responses or {})}


HTTP_METRICS_PREFIX = "drift_http"
"""Litestar's Prometheus middleware families: `drift_http_requests_total`, `..._request_duration_seconds`,
`..._requests_in_progress`, `..._requests_error_total`; labels `app_name`, `method`, `path` (the route's
template, so ids never become series) and `status_code`."""


def http_metrics(service: str) -> DefineMiddleware:
    """Request metrics by Litestar's Prometheus plugin, in the registry `/metrics` serves.

    Health, metrics and schema routes are left out: probes and scrapes are not traffic.
    """
    config = PrometheusConfig(
        app_name=service,
        prefix=HTTP_METRICS_PREFIX,
        group_path=True,
        exclude=["^/health", "^/metrics", "^/schema"],
    )
    return config.middleware


def tracing_plugin() -> OpenTelemetryPlugin:
    return OpenTelemetryPlugin(OpenTelemetryConfig(exclude=PUBLIC_PATHS))


ReadinessCheck = Callable[[], Awaitable[bool]]


def health_handlers(ready: ReadinessCheck) -> Sequence[Any]:
    """`/health/live`, `/health/ready` and `/metrics` route handlers."""

    @get("/health/live", include_in_schema=False, sync_to_thread=False)
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready", include_in_schema=False)
    async def readiness() -> Response[dict[str, str]]:
        try:
            is_ready = await ready()
        except Exception:
            is_ready = False
        if is_ready:
            return Response({"status": "ready"})
        return Response({"status": "not ready"}, status_code=503, headers={"Retry-After": "1"})

    @get("/metrics", include_in_schema=False)
    async def metrics() -> Response[bytes]:
        return Response(await render(), media_type=CONTENT_TYPE_LATEST)

    return [live, readiness, metrics]


Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def api_app(
    service: str,
    title: str,
    route_handlers: Sequence[ControllerRouterHandler],
    *,
    ready: ReadinessCheck,
    keys: ApiKeys,
    service_token: str | None = None,
    dependencies: Dependencies | None = None,
    lifespan: Sequence[Lifespan] = (),
    state: State | None = None,
    exception_handlers: Mapping[Any, Callable[..., Response[Any]]] = EXCEPTION_HANDLERS,
) -> Litestar:
    """A Drift HTTP API (the gateway, the dsl-store) as every one is built.

    Beside `route_handlers`: health, metrics and the offline Swagger page; request metrics, header
    limits and bearer auth (tenant keys, and `service_token` naming its tenant in `X-Drift-Tenant`);
    problem+json errors; OpenAPI at `/schema` with every raw body documented; tracing; the body
    limit; and no logging config of Litestar's own, since `serve` configures logging.
    """
    app = Litestar(
        route_handlers=[*route_handlers, swagger_assets(), *health_handlers(ready)],
        dependencies=dependencies,
        lifespan=list(lifespan),
        state=state,
        middleware=[http_metrics(service), header_limits(), auth_middleware(keys, service_token)],
        exception_handlers=dict(exception_handlers),
        openapi_config=openapi_config(title),
        plugins=[tracing_plugin(), DriftStructSchemaPlugin(), ProblemResponses()],
        request_max_body_size=MAX_BODY_BYTES,
        # configure_logging() owns logging; Litestar's default config would replace its root handler.
        logging_config=None,
    )
    return document_request_bodies(app)


def tenant_of(request: Request[Any, Any, Any]) -> str:
    user = request.user
    assert isinstance(user, Tenant)
    return user.name


def serve(app: Litestar, service: str, host: str, port: int, log_format: str, log_level: str) -> None:
    """Run an HTTP service with uvicorn, with Drift's logging and tracing set up around it."""
    configure_logging(service, log_format, log_level)
    setup_tracing(service)
    metrics.serve_as(service)
    log.info("http.listening", service=service, host=host, port=port)
    try:
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
    finally:
        shutdown_tracing()
