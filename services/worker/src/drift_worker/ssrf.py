"""The SSRF guard, enforced where HTTP nodes connect.

The decision is the platform's one guard (`drift_runtime.ssrf.Guard`: public
addresses only, numeric disguises normalised, `DRIFT_HTTP_ALLOW_HOSTS` lifts
it by name or address). This module puts it *inside* the shared httpx
client's network backend: every TCP connect resolves the host once, vets the
answer and connects to the vetted address, so a DNS answer that changes
between check and connect (rebinding) cannot slip through, and every redirect
hop, which needs a connect of its own, is vetted again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpcore
import httpx

from drift_runtime.ssrf import ALLOWED_SCHEMES, Guard, SsrfRefused

__all__ = ["Guard", "GuardedBackend", "SsrfRefused", "check_scheme", "guarded_client"]

DEFAULT_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30.0)


def _authority(host: str, port: int) -> str:
    try:
        is_v6 = isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        is_v6 = False
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"


def check_scheme(url: httpx.URL) -> None:
    """Refuse, before any I/O, a URL (or redirect target) that is not http(s)."""
    if url.scheme not in ALLOWED_SCHEMES:
        raise SsrfRefused(f"scheme '{url.scheme}' is not allowed")


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the guard in front of every TCP connect."""

    def __init__(self, guard: Guard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = await self.guard.vet(f"http://{_authority(host, port)}/")
        # TLS still verifies the host name: httpcore passes it to start_tls as server_hostname.
        return await self.inner.connect_tcp(str(target.address), port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise SsrfRefused("HTTP nodes may not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport whose every TCP connect goes through the guard."""

    def __init__(self, guard: Guard, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx has no hook for httpcore's network backend, so the pool is rebuilt around the guarded one.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(guard),
        )


def no_cookies() -> CookieJar:
    """A cookie jar that keeps nothing (no domain is allowed to set or receive a cookie)."""
    # A CookieJar, not httpx.Cookies: httpx copies the cookies of a Cookies into a jar of its own policy.
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def guarded_client(guard: Guard, limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncClient:
    """The one client HTTP nodes share: guarded, no redirects of its own, no proxies from the environment.

    Its cookie jar keeps nothing: the client serves every tenant, so a cookie one tenant's endpoint
    set would otherwise be sent on another tenant's calls to that host. A node sends only the
    `Cookie` header its definition writes.
    """
    return httpx.AsyncClient(
        transport=GuardedTransport(guard, limits),
        cookies=no_cookies(),
        timeout=httpx.Timeout(30.0, connect=5.0),
        follow_redirects=False,
        trust_env=False,
    )
