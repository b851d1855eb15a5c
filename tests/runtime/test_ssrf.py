"""The SSRF guard's decisions, checked without sending any traffic."""

from __future__ import annotations

import pytest

from drift_runtime.ssrf import Guard, SsrfRefused, parse_address, parse_hosts

REFUSED = [
    "http://127.0.0.1/",
    "http://localhost/",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.5/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2002:7f00:1::]/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://017700000001/",
    "ftp://example.com/",
    "file:///etc/passwd",
    "http://user:secret@example.com/",
    "http:///nohost",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_non_public_and_malformed_targets_are_refused(url: str) -> None:
    """Loopback, private, link-local, metadata, multicast and numeric disguises of them are refused."""
    with pytest.raises(SsrfRefused):
        await Guard().vet(url)


@pytest.mark.parametrize("url", ["http://8.8.8.8/", "https://1.1.1.1:8443/x", "http://[2606:4700:4700::1111]/"])
async def test_public_literal_addresses_pass(url: str) -> None:
    """Public addresses pass without any lookup or request."""
    target = await Guard().vet(url)
    assert target.address == parse_address(target.host)


async def test_allow_list_opens_named_hosts_and_addresses_only() -> None:
    """Hosts in DRIFT_HTTP_ALLOW_HOSTS pass even when private; others stay refused."""
    guard = Guard(parse_hosts(" localhost, 127.0.0.1 ,,"))
    assert (await guard.vet("http://localhost:9/x")).address.is_loopback
    assert str((await guard.vet("http://2130706433/")).address) == "127.0.0.1"
    with pytest.raises(SsrfRefused):
        await guard.vet("http://127.0.0.2/")


def test_numeric_forms_normalise_to_their_address() -> None:
    """Decimal, octal, hex and mapped forms are read as the address they denote."""
    assert {str(parse_address(h)) for h in ("2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "::ffff:127.0.0.1")} == {
        "127.0.0.1"
    }
    assert parse_address("example.com") is None
