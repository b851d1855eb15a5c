"""HTTP-node credentials stay on their origin, and secrets come from the tenant's own store, end to end.

Two loopback stubs on two ports are two origins (`http://localhost:A` and `http://localhost:B`): the
session stub redirects, the second one records what reached it. The worker here has the shipped
`TenantSecrets` (a temporary folder and a given environment) and a provider adding `X-Provider-Token`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
import structlog
from nats.aio.client import Client as NatsClient
from temporalio.client import Client

from drift_runtime.temporal import run_result
from drift_schema.run import RunSnapshot
from drift_schema.workflow import WorkflowDefinition
from drift_worker.tokens import TenantSecrets, TokenProvider
from worker.worker_support import (
    Runner,
    Seen,
    Stub,
    definition,
    new_id,
    running_worker,
    serving,
    state,
    success,
)

ACME_TOKEN = "acme-file-secret-1f3a"
GLOBEX_TOKEN = "globex-env-secret-9c2e"
MARKED_VALUE = "marked-literal-7d41"
CREDENTIALS = ("authorization", "cookie", "proxy-authorization", "x-api-key", "x-vault", "x-provider-token")


class ProviderTokens:
    """A token provider adding a header of its own name to nodes whose id starts with `secure`."""

    async def headers(self, tenant: str, node_id: str) -> dict[str, str]:
        return {"X-Provider-Token": f"provider-{tenant}"} if node_id.startswith("secure") else {}


@dataclass
class OtherOrigin(Stub):
    """The session stub's routes, plus one that sets a cookie."""

    async def route(self, seen: Seen) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if seen.path == "/set-cookie":
            return 200, [(b"content-type", b"application/json"), (b"set-cookie", b"sid=from-b; Path=/")], b"{}"
        return await super().route(seen)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def other() -> AsyncIterator[Stub]:
    """A second loopback stub: same host name, another port, so another origin."""
    async with serving(OtherOrigin()) as running:
        yield running


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """acme's `api-token` as a file (with the trailing line break an editor leaves); globex's `only-globex`."""
    root = tmp_path_factory.mktemp("secrets")
    (root / "acme").mkdir()
    (root / "acme" / "api-token").write_text(ACME_TOKEN + "\n")
    (root / "globex").mkdir()
    (root / "globex" / "only-globex").write_text("globex-private")
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def task_queue(temporal_client: Client, nats_client: NatsClient, secrets_dir: Path) -> AsyncIterator[str]:
    """A worker with the shipped secret provider (globex's `api-token` in its environment) and ProviderTokens."""
    environ = {TenantSecrets.variable("globex", "api-token"): GLOBEX_TOKEN}
    providers: list[TokenProvider] = [TenantSecrets(secrets_dir, environ), ProviderTokens()]
    async with running_worker(temporal_client, nats_client, "credentials", providers) as running:
        yield running.task_queue


async def run_as(client: Client, queue: str, tenant: str, call: dict[str, Any]) -> RunSnapshot:
    """Run one HTTP node as `tenant`; a failure lands in `lastError` through the default failure path."""
    wf = definition(
        {
            "call": call,
            "done": success("OK"),
            "handler": state({"type": "SCRIPT", "output": "{% $global.lastError %}"}, "failed"),
            "failed": state({"type": "FAILURE", "error": "{% $global.lastError.message %}"}, end=True),
        },
        start="call",
        defaultFailureNode="handler",
    )
    return await _run(client, queue, tenant, wf)


async def _run(client: Client, queue: str, tenant: str, wf: WorkflowDefinition) -> RunSnapshot:
    _, handle = await Runner(client, queue).start(wf, workflow_id=new_id("cred"), tenant=tenant)
    return await run_result(handle)


def http(url: str, headers: dict[str, Any], secret_headers: list[str] | None = None, **node: Any) -> dict[str, Any]:
    """An HTTP node (`id` starts with `secure`, so ProviderTokens serves it) calling `url`."""
    request: dict[str, Any] = {"url": url, "headers": headers}
    if secret_headers is not None:
        request["secretHeaders"] = secret_headers
    return state({"type": "HTTP", "id": "secure_call", "request": request, **node}, "done")


def every_credential() -> dict[str, Any]:
    """One header of every kind that must stay on its origin, and one that may go anywhere."""
    return {
        "Authorization": "Bearer from-definition",
        "Cookie": "sid=from-definition",
        "Proxy-Authorization": "Basic cHJveHk6cGFzcw==",
        "X-Api-Key": MARKED_VALUE,
        "X-Vault": {"secret": "api-token", "prefix": "Token "},
        "X-Plain": "not-secret",
    }


def redirect_to(stub: Stub, target: str) -> str:
    return stub.url("/redirect?" + urlencode({"to": target}))


def only(stub: Stub, path: str, marker: str) -> Seen:
    hits = [seen for seen in stub.requests(path) if seen.query.get("m") == [marker]]
    assert len(hits) == 1, hits
    return hits[0]


async def follow(client: Client, queue: str, hops: list[Stub], secret_headers: list[str]) -> Seen:
    """Send `every_credential()` as acme through redirects at each of `hops` to the last one's `/json`."""
    marker = new_id("m")
    target = hops[-1].url(f"/json?m={marker}")
    for hop in reversed(hops[:-1]):
        target = redirect_to(hop, target)
    snapshot = await run_as(client, queue, "acme", http(target, every_credential(), secret_headers=secret_headers))
    assert snapshot.workflow_status == "COMPLETED", snapshot.context.get("lastError")
    return only(hops[-1], "/json", marker)


async def test_a_redirect_to_another_origin_drops_every_credential(
    temporal_client: Client, task_queue: str, stub: Stub, other: Stub
) -> None:
    """Across origins (another port), Authorization, Cookie, Proxy-Authorization, a header marked secret,
    a secret reference and a provider's header are all dropped; a plain header still follows."""
    received = await follow(temporal_client, task_queue, [stub, other], ["x-api-key"])
    sent = next(seen for seen in stub.requests("/redirect") if received.query["m"][0] in seen.query["to"][0])
    assert sent.headers["x-vault"] == f"Token {ACME_TOKEN}"
    assert sent.headers["x-provider-token"] == "provider-acme"
    assert sent.headers["x-api-key"] == MARKED_VALUE
    assert sent.headers["cookie"] == "sid=from-definition"
    assert [name for name in CREDENTIALS if name in received.headers] == []
    assert received.headers["x-plain"] == "not-secret"


async def test_a_redirect_within_the_origin_keeps_every_credential(
    temporal_client: Client, task_queue: str, stub: Stub
) -> None:
    """On the same origin (scheme, host and port), every header follows the redirect, the Cookie too."""
    received = await follow(temporal_client, task_queue, [stub, stub], ["X-Api-Key"])
    assert {name: received.headers.get(name) for name in CREDENTIALS} == {
        "authorization": "Bearer from-definition",
        "cookie": "sid=from-definition",
        "proxy-authorization": "Basic cHJveHk6cGFzcw==",
        "x-api-key": MARKED_VALUE,
        "x-vault": f"Token {ACME_TOKEN}",
        "x-provider-token": "provider-acme",
    }


async def test_credentials_dropped_once_never_come_back(
    temporal_client: Client, task_queue: str, stub: Stub, other: Stub
) -> None:
    """A -> B -> A: the credentials left at the hop to B are not sent again when the chain returns to A."""
    received = await follow(temporal_client, task_queue, [stub, other, stub], ["x-API-key"])
    assert [name for name in CREDENTIALS if name in received.headers] == []
    assert received.headers["x-plain"] == "not-secret"


async def test_a_cookie_an_endpoint_sets_is_never_sent_on_a_later_call(
    temporal_client: Client, task_queue: str, other: Stub
) -> None:
    """The shared client keeps no cookie jar: a Set-Cookie answered to acme is not sent on globex's call."""
    set_cookie = await run_as(temporal_client, task_queue, "acme", http(other.url("/set-cookie"), {}))
    assert set_cookie.workflow_status == "COMPLETED", set_cookie.context.get("lastError")
    marker = new_id("m")
    later = await run_as(temporal_client, task_queue, "globex", http(other.url(f"/json?m={marker}"), {}))
    assert later.workflow_status == "COMPLETED", later.context.get("lastError")
    assert "cookie" not in only(other, "/json", marker).headers


async def test_each_tenant_gets_its_own_secret_under_one_name(
    temporal_client: Client, task_queue: str, stub: Stub
) -> None:
    """One definition naming `api-token`: acme's run sends acme's (a file), globex's sends globex's (a variable)."""
    call = http(stub.url("/echo"), {"Authorization": {"secret": "api-token", "prefix": "Bearer "}})
    acme = await run_as(temporal_client, task_queue, "acme", call)
    globex = await run_as(temporal_client, task_queue, "globex", call)
    assert acme.context["call"]["authorization"] == f"Bearer {ACME_TOKEN}"
    assert globex.context["call"]["authorization"] == f"Bearer {GLOBEX_TOKEN}"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("only-globex", "secret 'only-globex' is not set for tenant 'acme'"),
        ("../globex/only-globex", "secret name '../globex/only-globex' is not valid"),
        ("globex_only-globex", "secret name 'globex_only-globex' is not valid"),
    ],
)
async def test_a_tenant_cannot_read_another_tenants_secret(
    temporal_client: Client, task_queue: str, stub: Stub, name: str, reason: str
) -> None:
    """acme naming globex's secret, by name, by path or by spelling its variable, fails its node with a
    clear message and without a call; the worker goes on serving globex, who reads it."""
    marker = new_id("m")
    call = http(stub.url(f"/echo?m={marker}"), {"X-Key": {"secret": name}}, retry={"maxAttempts": 3})
    snapshot = await run_as(temporal_client, task_queue, "acme", call)
    assert snapshot.workflow_status == "FAILED"
    assert reason in snapshot.context["lastError"]["message"]
    assert "globex-private" not in str(snapshot.context)
    assert not [seen for seen in stub.requests("/echo") if seen.query.get("m") == [marker]]
    own = http(stub.url("/echo"), {"X-Key": {"secret": "only-globex"}})
    after = await run_as(temporal_client, task_queue, "globex", own)
    assert after.context["call"]["method"] == "GET"


async def test_a_malformed_reference_fails_its_node_clearly(
    temporal_client: Client, task_queue: str, stub: Stub
) -> None:
    """A reference with an unknown field is refused with the header's name, before any call."""
    call = http(stub.url("/echo"), {"X-Key": {"secret": "api-token", "format": "x"}})
    snapshot = await run_as(temporal_client, task_queue, "acme", call)
    assert snapshot.workflow_status == "FAILED"
    assert "request/headers/X-Key: a secret reference is" in snapshot.context["lastError"]["message"]


async def test_secret_values_reach_no_log_and_no_failure_message(
    temporal_client: Client, task_queue: str, stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    """A marked header the HTTP library would refuse (a line break), quoting its value, fails the node naming
    the header only; neither that value nor a resolved secret appears in any log line or in the run."""
    broken = {"X-Api-Key": f"first-line\n{MARKED_VALUE}", "X-Vault": {"secret": "api-token"}}
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logged:
        refused = await run_as(
            temporal_client, task_queue, "acme", http(stub.url("/echo"), broken, secret_headers=["X-Api-Key"])
        )
        failing = await run_as(
            temporal_client, task_queue, "acme", http(stub.url("/status/500"), {"X-Vault": {"secret": "api-token"}})
        )
    assert refused.workflow_status == "FAILED"
    message = refused.context["lastError"]["message"]
    assert "request/headers/X-Api-Key: a header value may not hold a line break" in message
    assert failing.workflow_status == "FAILED"
    seen = " ".join([caplog.text, repr(logged), str(refused.context), str(failing.context)])
    assert MARKED_VALUE not in seen
    assert ACME_TOKEN not in seen
