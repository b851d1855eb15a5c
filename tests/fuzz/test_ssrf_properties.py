"""The SSRF guard's decision on generated targets, without any traffic beyond loopback.

tests/runtime/test_ssrf.py lists fixed spellings; here every non-public range
is sampled and written in every spelling a resolver accepts (dotted, one
decimal or hex integer, octal parts, short forms, IPv4-mapped, -compatible,
6to4 and NAT64 IPv6), names resolve through a stub (getaddrinfo is patched, so no DNS
query leaves the process), and redirect chains are followed by the worker's
own HTTP exchange against a loopback stub whose connects are all recorded.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support.loopback import HttpAnswer, HttpRequest, LoopbackServer

from drift_runtime.ssrf import Guard, SsrfRefused, is_public, parse_address
from drift_worker.http_activity import HttpActivities, HttpSettings
from drift_worker.nodes.http import HttpCall
from drift_worker.ssrf import GuardedBackend, GuardedTransport

NON_PUBLIC_V4 = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
]
NON_PUBLIC_V6 = ["::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32", "64:ff9b:1::/48"]
METADATA = ipaddress.IPv4Address("169.254.169.254")
EXAMPLES = 150


def _in(network: str) -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    net = ipaddress.ip_network(network)
    return st.integers(0, net.num_addresses - 1).map(lambda offset: net[offset])


NON_PUBLIC_V4_ADDRESSES = st.one_of(st.just(METADATA), *[_in(network) for network in NON_PUBLIC_V4])
NON_PUBLIC_V6_ADDRESSES = st.one_of(*[_in(network) for network in NON_PUBLIC_V6])
PUBLIC_V4_ADDRESSES = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address).filter(is_public)


def _v4_spellings(address: ipaddress.IPv4Address) -> list[str]:
    """What inet_aton, browsers and libc accept for one IPv4 address."""
    value = int(address)
    octets = list(address.packed)
    return [
        str(address),
        str(value),
        hex(value),
        "0x" + format(value, "010x"),
        ".".join(f"0{octet:o}" for octet in octets),
        ".".join(hex(octet) for octet in octets),
        f"{octets[0]}.{value & 0xFFFFFF}",
        f"{octets[0]}.{octets[1]}.{value & 0xFFFF}",
        f"0x{octets[0]:x}.{octets[1]}.0{octets[2]:o}.{octets[3]}",
        f"[::ffff:{address}]",
        f"[::ffff:{value >> 16:x}:{value & 0xFFFF:x}]",
        f"[0:0:0:0:0:ffff:{address}]",
        f"[::{address}]" if value > 0xFFFF else f"[::ffff:{address}]",
        f"[2002:{value >> 16:x}:{value & 0xFFFF:x}::1]",
        f"[64:ff9b::{value >> 16:x}:{value & 0xFFFF:x}]",
        f"[64:ff9b::{address}]",
    ]


def _spelled(address: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    return st.sampled_from(_v4_spellings(address))


def _url(scheme: str, host: str, port: int | None, path: str) -> str:
    return f"{scheme}://{host}{f':{port}' if port else ''}/{path}"


URL_PARTS = st.tuples(
    st.sampled_from(["http", "https", "HTTP"]), st.none() | st.integers(1, 65535), st.text("abc/?=", max_size=8)
)


@dataclass
class StubResolver:
    """getaddrinfo for the test process: names it knows answer their addresses, every other name fails."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.asked.append(name)
        addresses = self.answers.get(name.lower().rstrip("."))
        if addresses is None:
            try:
                literal = ipaddress.ip_address(name)
            except ValueError:
                raise socket.gaierror(socket.EAI_NONAME, "unknown to the stub resolver") from None
            addresses = [str(literal)]
        result = []
        for text in addresses:
            family = socket.AF_INET6 if ":" in text else socket.AF_INET
            sockaddr = (text, int(port or 0), 0, 0) if family == socket.AF_INET6 else (text, int(port or 0))
            result.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return result


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubResolver]:
    """Every lookup in this process goes to a stub: no DNS query leaves the machine."""
    stub = StubResolver()
    monkeypatch.setattr(socket, "getaddrinfo", stub)
    yield stub


HYPOTHESIS = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
# Lookups hop through the executor: fewer examples for the tests that resolve names.
RESOLVING = settings(HYPOTHESIS, max_examples=60)


@given(data=st.data(), parts=URL_PARTS)
@HYPOTHESIS
async def test_non_public_ipv4_is_refused_in_every_spelling(
    resolver: StubResolver, data: st.DataObject, parts: tuple[str, int | None, str]
) -> None:
    """Private, loopback, link-local (the metadata address), CGNAT, reserved, multicast: refused however written."""
    address = data.draw(NON_PUBLIC_V4_ADDRESSES)
    host = data.draw(_spelled(address))
    scheme, port, path = parts
    with pytest.raises(SsrfRefused):
        await Guard().vet(_url(scheme, host, port, path))
    parsed = parse_address(host)
    # Every spelling is read as the address itself (6to4 embeds it), never mistaken for a name.
    assert parsed is not None and (parsed == address or not is_public(parsed))


@given(address=NON_PUBLIC_V6_ADDRESSES, parts=URL_PARTS)
@HYPOTHESIS
async def test_non_public_ipv6_is_refused(
    resolver: StubResolver, address: ipaddress.IPv6Address, parts: tuple[str, int | None, str]
) -> None:
    """Loopback, unique-local, link-local, multicast and documentation IPv6 are refused."""
    scheme, port, path = parts
    with pytest.raises(SsrfRefused):
        await Guard().vet(_url(scheme, f"[{address}]", port, path))


@given(address=PUBLIC_V4_ADDRESSES, data=st.data())
@HYPOTHESIS
async def test_public_ipv4_passes_as_itself(
    resolver: StubResolver, address: ipaddress.IPv4Address, data: st.DataObject
) -> None:
    """A public address passes in any spelling, and the vetted target is that very address (no lookup needed)."""
    host = data.draw(st.sampled_from([*_v4_spellings(address)[:9], f"[::ffff:{address}]"]))
    resolver.asked.clear()
    target = await Guard().vet(f"http://{host}/")
    assert target.address == address
    assert resolver.asked == []


NAMES = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}\Z")


@given(
    name=NAMES,
    private=st.lists(NON_PUBLIC_V4_ADDRESSES | NON_PUBLIC_V6_ADDRESSES, min_size=1, max_size=3),
    public=st.lists(PUBLIC_V4_ADDRESSES, max_size=3),
    data=st.data(),
)
@RESOLVING
async def test_names_resolving_to_any_non_public_address_are_refused(
    resolver: StubResolver, name: str, private: list[Any], public: list[Any], data: st.DataObject
) -> None:
    """A name is refused when any of its answers is non-public (rebinding: the public one may not be the one used)."""
    answers = data.draw(st.permutations([str(a) for a in private + public]))
    resolver.answers = {name: answers}
    resolver.asked.clear()
    with pytest.raises(SsrfRefused):
        await Guard().vet(f"http://{name}/")
    assert resolver.asked == [name]


@given(name=NAMES, public=st.lists(PUBLIC_V4_ADDRESSES, min_size=1, max_size=3))
@RESOLVING
async def test_names_resolving_only_to_public_addresses_pass(
    resolver: StubResolver, name: str, public: list[ipaddress.IPv4Address]
) -> None:
    """A name whose every answer is public passes, and the first answer is where to connect."""
    resolver.answers = {name: [str(a) for a in public]}
    target = await Guard().vet(f"https://{name}:8443/x")
    assert target.address == public[0] and target.host == name and target.port == 8443


@given(name=NAMES, address=NON_PUBLIC_V4_ADDRESSES)
@RESOLVING
async def test_allow_list_opens_exactly_the_listed_name(resolver: StubResolver, name: str, address: Any) -> None:
    """DRIFT_HTTP_ALLOW_HOSTS lifts the check for the listed name only, not for its address under another name."""
    resolver.answers = {name: [str(address)], f"x{name}": [str(address)]}
    assert (await Guard([name]).vet(f"http://{name}/")).address == address
    with pytest.raises(SsrfRefused):
        await Guard([name]).vet(f"http://x{name}/")


# ---- redirects -------------------------------------------------------------------------------------


@dataclass
class Redirector(LoopbackServer):
    """Answers every request with a redirect to `location`."""

    location: str = "/"
    hits: list[HttpRequest] = field(default_factory=list)

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        self.hits.append(request)
        return _redirect(self.location)


def _redirect(location: str) -> HttpAnswer:
    # LoopbackServer writes a fixed header set; Location rides in as an extra header line.
    return HttpAnswer(302, b"", content_type=f"text/plain\r\nLocation: {location}")


class LoopbackOnly(httpcore.AsyncNetworkBackend):
    """The real network backend, refusing (and recording) any connect that is not to loopback."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.connects: list[str] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.connects.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise AssertionError(f"the guard let a connect to {host} through")
        return await self.inner.connect_tcp(host, port, *args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@pytest_asyncio.fixture(loop_scope="session")
async def redirector() -> AsyncIterator[Redirector]:
    async with Redirector() as server:
        yield server


def _exchanger(allow: list[str]) -> tuple[HttpActivities, LoopbackOnly, Callable[[], Any]]:
    guard = Guard(allow)
    backend = LoopbackOnly()
    transport = GuardedTransport(guard)
    # The same pool GuardedTransport builds, with the recording backend under the guard.
    transport._pool = httpcore.AsyncConnectionPool(network_backend=GuardedBackend(guard, backend))
    client = httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)
    activities = HttpActivities(js=None, client=client, settings=HttpSettings(max_redirects=3))  # type: ignore[arg-type]
    return activities, backend, client.aclose


REDIRECT_TARGETS = st.one_of(
    st.tuples(NON_PUBLIC_V4_ADDRESSES.flatmap(_spelled), st.none() | st.integers(1, 65535)).map(
        lambda pair: _url("http", pair[0], pair[1], "x")
    ),
    NON_PUBLIC_V6_ADDRESSES.map(lambda address: f"http://[{address}]/x"),
    NAMES.map(lambda name: f"http://{name}/x"),
    st.sampled_from(
        [
            "file:///etc/passwd",
            "gopher://127.0.0.1:6379/_INFO",
            "ftp://10.0.0.1/",
            "http://127.0.0.1@169.254.169.254/",
            "http://169.254.169.254#@127.0.0.1/",
            "//169.254.169.254/latest/meta-data",
            "http://localhost./",
        ]
    ),
)


@given(target=REDIRECT_TARGETS)
@settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
async def test_redirects_to_refused_targets_are_never_followed(
    resolver: StubResolver, redirector: Redirector, target: str
) -> None:
    """An allowed loopback host redirecting anywhere refused fails the call; only the first hop ever connects."""
    try:
        host = httpx.URL(target).host
    except httpx.InvalidURL:
        host = ""  # httpx refuses it too (octal parts): the redirect fails before any connect
    # 127.0.0.1 is allow-listed by address (it starts the chain), so its spellings are followed by design.
    assume(parse_address(host) != ipaddress.IPv4Address("127.0.0.1"))
    # Names in the target resolve to the metadata address.
    resolver.answers = {host.rstrip("."): [str(METADATA)]} if host else {}
    redirector.location = target
    redirector.hits.clear()
    activities, backend, close = _exchanger(["127.0.0.1"])
    try:
        # httpx itself rejects some Locations (octal parts) as a protocol error: refused before any connect too.
        with pytest.raises((SsrfRefused, httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.RemoteProtocolError)):
            await activities._exchange(HttpCall(method="GET", url=f"{redirector.url}/start"), {}, frozenset(), 5.0, {})
    finally:
        await close()
    assert len(redirector.hits) == 1
    assert set(backend.connects) <= {"127.0.0.1"}
