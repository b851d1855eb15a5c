"""HTTP nodes against a loopback stub: requests from expressions, retries, failures, credentials, the SSRF guard."""

from __future__ import annotations

import importlib.metadata
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from drift_runtime.temporal import run_result
from drift_schema.nodes import RetryPolicy as NodeRetry
from drift_worker import tokens
from drift_worker.config import Settings
from drift_worker.model import NODE_FAILED
from drift_worker.nodes.http import temporal_retry
from drift_worker.ssrf import Guard, SsrfRefused, guarded_client
from worker.worker_support import EventTap, Runner, StaticTokens, Stub, definition, new_id, script, state, success


def http(
    request: dict[str, Any], next_node: str | None = "done", parameters: dict[str, Any] | None = None, **node: Any
) -> dict[str, Any]:
    """A state inlining an HTTP node; `node` adds node fields (output, retry, timeoutMs)."""
    return state({"type": "HTTP", "request": request, **node}, next_node, parameters=parameters or {})


def flow(call: dict[str, Any], **extra: Any) -> Any:
    return definition(
        {"call": call, "done": success("OK"), "handler": script("{% $global.lastError %}", "failed")}
        | {"failed": state({"type": "FAILURE", "error": "{% $global.lastError.message %}"}, end=True)},
        start="call",
        defaultFailureNode="handler",
        **extra,
    )


async def test_get_with_query_and_headers_from_expressions(runner: Runner, stub: Stub) -> None:
    """Method, url, query and headers come from expressions; the default output is the parsed JSON body."""
    marker = new_id("q")
    call = http(
        {
            "method": "{% 'GET' %}",
            "url": "{% $params.base & '/json' %}",
            "query": {"marker": "{% $global.params.marker %}", "page": 2},
            "headers": {"X-Custom": "{% $workflow.tenant %}"},
        },
        parameters={"base": stub.url("")},
    )
    snapshot = await runner.run(flow(call), {"marker": marker})
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.context["call"] == {"ok": True, "query": {"marker": [marker], "page": ["2"]}, "n": 42}
    seen = next(s for s in stub.requests("/json") if s.query.get("marker") == [marker])
    assert seen.headers["x-custom"] == "acme"


async def test_json_body_and_output_with_response(runner: Runner, stub: Stub) -> None:
    """A JSON body is sent as JSON; `output` sees `$response` with status, headers and body."""
    call = http(
        {"method": "POST", "url": stub.url("/echo"), "body": "{% {'name': $global.params.name} %}"},
        output="{% {'status': $response.status, 'stub': $response.headers.`x-stub`, 'sent': $response.body} %}",
    )
    snapshot = await runner.run(flow(call), {"name": "Ada"})
    output = snapshot.context["call"]
    assert output["status"] == 200
    assert output["stub"] == "yes"
    assert output["sent"]["contentType"] == "application/json"
    assert output["sent"]["body"] == '{"name":"Ada"}'


async def test_form_and_text_bodies(runner: Runner, stub: Stub) -> None:
    """A form content type encodes an object as a form; a string body goes as text."""
    form = http(
        {
            "method": "POST",
            "url": stub.url("/echo"),
            "contentType": "application/x-www-form-urlencoded",
            "body": {"a": "1", "b": "two words"},
        },
        next_node="text",
    )
    text = http({"method": "PUT", "url": stub.url("/echo"), "body": "{% 'hello ' & $global.params.who %}"})
    wf = definition({"form": form, "text": text, "done": success()}, start="form")
    snapshot = await runner.run(wf, {"who": "you"})
    assert snapshot.context["form"]["contentType"] == "application/x-www-form-urlencoded"
    assert snapshot.context["form"]["body"] == "a=1&b=two+words"
    assert snapshot.context["text"]["method"] == "PUT"
    assert snapshot.context["text"]["contentType"].startswith("text/plain")
    assert snapshot.context["text"]["body"] == "hello you"


async def test_text_response_is_bound_as_text(runner: Runner, stub: Stub) -> None:
    """A non-JSON answer is `$response.body` as text."""
    snapshot = await runner.run(flow(http({"url": stub.url("/text")})))
    assert snapshot.context["call"] == "plain words"


async def test_retries_keep_one_idempotency_key_and_report_the_attempt(
    runner: Runner, stub: Stub, tap: EventTap
) -> None:
    """A 503 is retried by the node's policy; every attempt of one visit sends the same Idempotency-Key."""
    key = new_id("flaky")
    call = http(
        {"method": "POST", "url": stub.url(f"/flaky/{key}?fail=2"), "body": {"x": 1}},
        retry={"maxAttempts": 3, "initialIntervalMs": 50, "backoffCoefficient": 1.0},
    )
    public, handle = await runner.start(flow(call))
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.context["call"] == {"attempts": 3}
    keys = {seen.headers["idempotency-key"] for seen in stub.requests(f"/flaky/{key}")}
    assert len(stub.requests(f"/flaky/{key}")) == 3
    assert len(keys) == 1
    event = await tap.node(public, "call")
    assert (event["status"], event["attempt"]) == ("COMPLETED", 3)
    # The event's id is the visit's, not the attempt's: a retried publish would be deduplicated.
    assert event["eventId"] == f"{handle.first_execution_run_id}:n1"
    assert [e["instanceName"] for e in tap.nodes[public]].count("call") == 1


async def test_two_visits_get_different_idempotency_keys(runner: Runner, stub: Stub) -> None:
    """Each visit of an HTTP node (here two instances) has its own Idempotency-Key."""
    wf = definition(
        {
            "one": http({"method": "POST", "url": stub.url("/echo"), "body": {}}, "two"),
            "two": http({"method": "POST", "url": stub.url("/echo"), "body": {}}),
            "done": success(),
        },
        start="one",
    )
    snapshot = await runner.run(wf)
    assert snapshot.context["one"]["idempotencyKey"] != snapshot.context["two"]["idempotencyKey"]


async def test_non_2xx_fails_the_node_after_its_retries(runner: Runner, stub: Stub, tap: EventTap) -> None:
    """A 500 on every attempt fails the node after maxAttempts, into the default failure path."""
    marker = new_id("m")
    call = http(
        {"url": stub.url("/status/500"), "query": {"m": marker}},
        retry={"maxAttempts": 2, "initialIntervalMs": 50},
    )
    public, snapshot = await runner.finish(flow(call))
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.context["lastError"]["node"] == "call"
    assert "answered HTTP 500" in snapshot.context["lastError"]["message"]
    assert len([s for s in stub.requests("/status/500") if s.query.get("m") == [marker]]) == 2
    failed = await tap.node(public, "call")
    assert (failed["status"], failed["attempt"]) == ("FAILED", 2)


async def test_timeout_per_attempt_fails_the_node(runner: Runner, stub: Stub) -> None:
    """`timeoutMs` bounds each attempt: a slow answer fails the node."""
    call = http({"url": stub.url("/slow?s=3")}, timeoutMs=500)
    snapshot = await runner.run(flow(call))
    assert snapshot.workflow_status == "FAILED"
    assert "timed out" in snapshot.context["lastError"]["message"]


async def test_response_over_the_size_cap_fails_without_retry(runner: Runner, stub: Stub) -> None:
    """An answer over the response cap fails the node at once, even with retries left."""
    marker = new_id("big")
    call = http({"url": stub.url("/big"), "query": {"size": 100_000, "m": marker}}, retry={"maxAttempts": 3})
    snapshot = await runner.run(flow(call))
    assert snapshot.workflow_status == "FAILED"
    assert "over the limit of 65536 bytes" in snapshot.context["lastError"]["message"]
    assert len([s for s in stub.requests("/big") if s.query.get("m") == [marker]]) == 1


async def test_credentials_come_from_token_providers_not_the_definition(runner: Runner, stub: Stub) -> None:
    """A provider's Authorization header is added (and wins over the definition's) for the nodes it serves."""
    wf = definition(
        {
            "secured": state(
                {
                    "type": "HTTP",
                    "id": "secure_api",
                    "request": {
                        "method": "POST",
                        "url": stub.url("/echo"),
                        "headers": {"Authorization": "Bearer from-definition"},
                        "body": {},
                    },
                },
                "plain",
            ),
            "plain": state(
                {"type": "HTTP", "id": "public_api", "request": {"method": "POST", "url": stub.url("/echo")}}
            ),
            "done": success(),
        },
        start="secured",
    )
    snapshot = await runner.run(wf)
    assert snapshot.context["secured"]["authorization"] == "Bearer token-of-acme"
    assert snapshot.context["plain"]["authorization"] is None
    assert ("acme", "secure_api") in StaticTokens.calls


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "non-public address"),
        ("2130706433", "non-public address"),
        ("0x7f.1", "non-public address"),
        ("127.1", "non-public address"),
        ("[::ffff:127.0.0.1]", "non-public address"),
        # httpx itself rejects a dotted quad with a leading zero as an invalid URL.
        ("0177.0.0.1", "Invalid IPv4 address"),
    ],
)
async def test_ssrf_guard_refuses_loopback_in_any_spelling(runner: Runner, stub: Stub, host: str, reason: str) -> None:
    """Loopback by address (decimal, octal, hex, short, IPv4-mapped) is refused; nothing reaches the stub."""
    marker = new_id("ssrf")
    call = http({"url": f"http://{host}:{stub.port}/json?m={marker}"}, retry={"maxAttempts": 3})
    snapshot = await runner.run(flow(call))
    assert snapshot.workflow_status == "FAILED"
    assert reason in snapshot.context["lastError"]["message"]
    assert not [s for s in stub.requests("/json") if s.query.get("m") == [marker]]


async def test_redirects_are_checked_at_every_hop(runner: Runner, stub: Stub) -> None:
    """An allowed host redirecting to a refused address fails the node; the second hop is never sent."""
    marker = new_id("hop")
    target = f"http://127.0.0.1:{stub.port}/json?m={marker}"
    call = http({"url": stub.url("/redirect"), "query": {"to": target}})
    snapshot = await runner.run(flow(call))
    assert snapshot.workflow_status == "FAILED"
    assert "non-public address" in snapshot.context["lastError"]["message"]
    assert not [s for s in stub.requests("/json") if s.query.get("m") == [marker]]


async def test_redirects_to_allowed_hosts_are_followed(runner: Runner, stub: Stub) -> None:
    """A redirect to an allowed host is followed."""
    call = http({"url": stub.url("/redirect"), "query": {"to": stub.url("/json")}})
    snapshot = await runner.run(flow(call))
    assert snapshot.context["call"]["ok"] is True


async def test_non_http_schemes_are_refused(runner: Runner) -> None:
    """Only http and https URLs may be called."""
    snapshot = await runner.run(flow(http({"url": "file:///etc/passwd"})))
    assert snapshot.workflow_status == "FAILED"
    assert "scheme 'file' is not allowed" in snapshot.context["lastError"]["message"]


async def test_guarded_client_refuses_before_connecting(stub: Stub) -> None:
    """The guarded client refuses loopback at connect time unless the host is allowed by name."""
    async with guarded_client(Guard(())) as refusing:
        with pytest.raises(SsrfRefused):
            await refusing.get(stub.url("/json"))
    async with guarded_client(Guard(("localhost",))) as allowing:
        response = await allowing.get(stub.url("/json"), timeout=httpx.Timeout(5.0))
        assert response.status_code == 200


class _EntryPoints:
    def __init__(self, *points: importlib.metadata.EntryPoint) -> None:
        self.points = points

    def __call__(self, group: str) -> tuple[importlib.metadata.EntryPoint, ...]:
        return tuple(point for point in self.points if point.group == group)


def test_token_providers_are_discovered_from_entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The shipped TenantSecrets comes first (on the given folder), then entry points in `drift.token_providers`
    are loaded (a class is instantiated), in name order."""
    point = importlib.metadata.EntryPoint(
        name="static", value="worker.worker_support:StaticTokens", group=tokens.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(tokens, "entry_points", _EntryPoints(point))
    providers = tokens.discover_token_providers(secrets_dir=str(tmp_path), environ={})
    assert len(providers) == 2
    assert isinstance(providers[0], tokens.TenantSecrets)
    assert providers[0].directory == tmp_path
    assert isinstance(providers[1], StaticTokens)
    # The folder comes from the worker's settings (DRIFT_SECRETS_DIR), passed in by the app: nothing else reads it.
    monkeypatch.setenv("DRIFT_SECRETS_DIR", str(tmp_path / "from-settings"))
    from_settings = tokens.discover_token_providers(secrets_dir=Settings.from_env().secrets_dir)[0]
    assert isinstance(from_settings, tokens.TenantSecrets)
    assert from_settings.directory == tmp_path / "from-settings"
    without = tokens.discover_token_providers(environ={})[0]
    assert isinstance(without, tokens.TenantSecrets)
    assert without.directory is None


def test_a_broken_token_provider_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider that cannot load is an error, not a silent call without credentials."""
    point = importlib.metadata.EntryPoint(name="broken", value="no_such_module:Nope", group=tokens.ENTRY_POINT_GROUP)
    monkeypatch.setattr(tokens, "entry_points", _EntryPoints(point))
    with pytest.raises(tokens.TokenProviderError, match="broken"):
        tokens.discover_token_providers()


def test_node_retry_maps_onto_temporal_retry_policy() -> None:
    """Every `retry` field lands in Temporal's policy; a refused call is never retried; no `retry` is one attempt."""
    policy = temporal_retry(
        msgspec.convert(
            {"maxAttempts": 4, "initialIntervalMs": 250, "backoffCoefficient": 3.0, "maxIntervalMs": 2000},
            NodeRetry,
        )
    )
    assert policy.maximum_attempts == 4
    assert policy.initial_interval == timedelta(milliseconds=250)
    assert policy.backoff_coefficient == 3.0
    assert policy.maximum_interval == timedelta(seconds=2)
    assert policy.non_retryable_error_types == [NODE_FAILED]
    single = temporal_retry(None)
    assert (single.maximum_attempts, single.non_retryable_error_types) == (1, [NODE_FAILED])
