"""The same-origin proxy: the browser calls `/api/gateway/...` and `/api/dsl/...` with its own key.

The Studio adds no credentials of its own: the caller's `Authorization` header is passed on as
it came, so what a key may see and do is decided by the APIs alone (tenant isolation included).
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from litestar import Request, Response
from litestar.exceptions import NotAuthorizedException

from drift_runtime.web import DriftProblem, NotFound, Unavailable

log = structlog.get_logger("drift.studio.proxy")

FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "x-client-id", "x-user-id")
FORWARDED_RESPONSE_HEADERS = ("content-type", "retry-after", "www-authenticate", "location")


class BadGateway(DriftProblem):
    """The API answered with something the proxy cannot pass on."""

    status = 502
    title = "Bad Gateway"


class Proxy:
    """Forwards one request to an upstream API and its answer back, unchanged."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @staticmethod
    def _headers(request: Request[Any, Any, Any]) -> dict[str, str]:
        return {name: value for name in FORWARDED_REQUEST_HEADERS if (value := request.headers.get(name)) is not None}

    @staticmethod
    def _target(base: str, path: str) -> str:
        # The path stays on `base`: no scheme, no authority, no dot segments can move it elsewhere.
        clean = "/" + path.lstrip("/")
        if "//" in clean or any(part in {".", ".."} for part in clean.split("/")):
            raise NotFound("no such API path")
        return base + clean

    async def forward(self, request: Request[Any, Any, Any], base: str, path: str) -> Response[bytes]:
        """Send `request` to `base` + `path` with its query, body and the caller's own key."""
        body = await request.body()
        try:
            answer = await self.client.request(
                request.method,
                self._target(base, path),
                params=list(request.query_params.multi_items()),
                content=body or None,
                headers=self._headers(request),
            )
        except httpx.TimeoutException:
            raise Unavailable("the API did not answer in time") from None
        except httpx.HTTPError as error:
            log.warning("studio.upstream_unreachable", base=base, reason=type(error).__name__)
            raise Unavailable("the API is unreachable; retry shortly") from None
        headers = {name: value for name in FORWARDED_RESPONSE_HEADERS if (value := answer.headers.get(name))}
        headers.update({k: v for k, v in answer.headers.items() if k.lower().startswith("x-drift-")})
        media_type = headers.pop("content-type", None)
        return Response(answer.content, status_code=answer.status_code, headers=headers, media_type=media_type)

    async def require_run(self, request: Request[Any, Any, Any], gateway: str, workflow_id: str) -> None:
        """Raise unless the caller's own key can read run `workflow_id` from the gateway."""
        try:
            answer = await self.client.get(f"{gateway}/v3/workflow/{workflow_id}", headers=self._headers(request))
        except httpx.HTTPError:
            raise Unavailable("the gateway is unreachable; retry shortly") from None
        if answer.status_code == 404:
            raise NotFound(f"workflow '{workflow_id}' not found")
        if answer.status_code == 401:
            raise NotAuthorizedException("unknown bearer token")
        if answer.status_code != 200:
            raise BadGateway(f"the gateway answered {answer.status_code}")
