"""The SSRF guard: may Drift send a request to this URL?

Every address the host resolves to must be a public (globally routable,
non-multicast) address, unless the host is allowed by name or address in
`DRIFT_HTTP_ALLOW_HOSTS`. Numeric tricks are normalised first: decimal
(`2130706433`), octal (`0177.0.0.1`), hex (`0x7f.1`), short forms (`127.1`)
IPv4-mapped or -compatible IPv6 (`::ffff:127.0.0.1`), 6to4 and NAT64 (`64:ff9b::7f00:1`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOWED_SCHEMES = frozenset({"http", "https"})
RESOLVE_TIMEOUT_S = 5.0
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
# IANA special-purpose blocks that older interpreters' ipaddress still calls global (3.11 before 3.11.10):
# the IETF protocol assignments (192.0.0.0/24, e.g. the 192.0.0.8 dummy address) and local-use NAT64.
NOT_GLOBAL = (ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class SsrfRefused(ValueError):
    """The URL may not be called: bad scheme, or a host that is not public and not allowed."""


@dataclass(frozen=True, slots=True)
class Target:
    """A vetted destination: connect to `address`, present `host`."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress


def parse_hosts(text: str | None) -> tuple[str, ...]:
    """The hosts of a comma-separated list such as `DRIFT_HTTP_ALLOW_HOSTS`."""
    return tuple(host.strip() for host in (text or "").split(",") if host.strip())


def parse_address(host: str) -> IPAddress | None:
    """The IP address a host string denotes, including the loose numeric IPv4 forms; None for names."""
    text = host.strip("[]")
    try:
        return _unmapped(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        # inet_aton accepts exactly the legacy forms browsers and libc resolve: 127.1, 0x7f.1, 017700000001.
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in NAT64_PREFIX:
            # A NAT64 gateway forwards 64:ff9b::a.b.c.d to a.b.c.d, private ranges included.
            return ipaddress.IPv4Address(address.packed[12:])
        packed = address.packed
        if packed[:12] == bytes(12) and int.from_bytes(packed[12:], "big") > 0xFFFF:
            # IPv4-compatible (deprecated ::a.b.c.d) still reaches the IPv4 host on some stacks;
            # ::1 and :: stay IPv6 loopback and unspecified.
            return ipaddress.IPv4Address(packed[12:])
    return address


def is_public(address: IPAddress) -> bool:
    """Globally routable and not multicast: never loopback, private, link-local, reserved or unspecified."""
    address = _unmapped(address)
    if any(address in network for network in NOT_GLOBAL):
        return False
    return address.is_global and not address.is_multicast


DENIED_PORT_PREFIX = "!"
"""An allow-list entry `!<port>` keeps that port out of reach on every host the list allows."""


class Guard:
    """Decides whether outgoing requests may go to a URL; `allow_hosts` lifts the check by name or address.

    Entries `!<port>` of `allow_hosts` take a port back: a host that is allowed only because the
    list names it (loopback, private) is still refused on that port. `drift dev` lists Drift's own
    servers' ports so (Temporal frontend and UI, NATS, Redis, the services), so that a tenant's
    HTTP node on an allowed loopback can never read Drift itself, nor another tenant's runs.
    """

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        entries = [host.strip() for host in allow_hosts if host.strip()]
        self.denied_ports = {
            int(entry[1:]) for entry in entries if entry.startswith(DENIED_PORT_PREFIX) and entry[1:].isdigit()
        }
        names = [entry for entry in entries if not entry.startswith(DENIED_PORT_PREFIX)]
        self.allowed_names = {host.lower().strip("[]") for host in names}
        self.allowed_addresses = {a for a in (parse_address(h) for h in self.allowed_names) if a is not None}

    def _allowed(self, host: str, address: IPAddress, port: int) -> bool:
        if is_public(address):
            return True
        if port in self.denied_ports:
            return False
        return host in self.allowed_names or address in self.allowed_addresses

    async def vet(self, url: str) -> Target:
        """Resolve and check a URL; raises SsrfRefused. Connect to `Target.address` to avoid a second lookup."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise SsrfRefused(f"scheme '{parts.scheme}' is not allowed")
        host = (parts.hostname or "").lower()
        if not host:
            raise SsrfRefused("the URL has no host")
        if parts.username or parts.password:
            raise SsrfRefused("credentials in URLs are not allowed")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise SsrfRefused("the URL has an invalid port") from None
        literal = parse_address(host)
        addresses = [literal] if literal is not None else await _resolve(host, port)
        if not addresses:
            raise SsrfRefused(f"'{host}' does not resolve")
        for address in addresses:
            if not self._allowed(host, address, port):
                if port in self.denied_ports:
                    raise SsrfRefused(f"port {port} of '{host}' is one of Drift's own servers")
                raise SsrfRefused(f"'{host}' resolves to a non-public address ({address})")
        return Target(url=url, scheme=scheme, host=host, port=port, address=addresses[0])


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=RESOLVE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return []
    seen: list[IPAddress] = []
    for info in infos:
        address = _unmapped(ipaddress.ip_address(info[4][0]))
        if address not in seen:
            seen.append(address)
    return seen
