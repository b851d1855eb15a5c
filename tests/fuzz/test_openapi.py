"""schemathesis against the served OpenAPI documents of a running gateway and dsl-store.

Each operation is fed generated requests (path and query parameters from the
served document; bodies from drift_schema's Structs, which the document does
not carry because the handlers read raw bodies), valid and invalid ones, and
every answer is checked: never a 5xx, content type, headers and body as
documented for that status, and any status the document does not list must be
a problem+json of a client error.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import nats
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.loopback import HttpAnswer, HttpRequest, LoopbackServer
from support.starts import hello

from drift_cli.platform import Platform
from drift_schema.api import DisconnectedRequest, Problem, ResumeRequest, StartRequest
from drift_schema.context import RunContext
from drift_schema.nodes import NodeDefinition
from drift_schema.schedules import ScheduleRequest
from drift_schema.testrun import RetryRequest, TestRequest
from drift_schema.workflow import Bundle, WorkflowDefinition
from fuzz.fuzz_support import SERVICE_TOKEN, bearer

EXAMPLES_PER_OPERATION = int(os.environ.get("DRIFT_FUZZ_EXAMPLES", "6"))
"""The fewest cases per operation and generation mode, whatever the budget."""
MAX_EXAMPLES = int(os.environ.get("DRIFT_FUZZ_MAX_EXAMPLES", "500"))
"""The most cases per operation and generation mode."""
PASS_BUDGET_S = float(os.environ.get("DRIFT_FUZZ_BUDGET_S", "20"))
"""Wall-clock seconds one pass (one document) spends beyond the minimum: shared out over the operations,
time a quick operation leaves is handed on to the next. Raise it for a longer run (DRIFT_FUZZ_BUDGET_S=600)."""
FUZZ_SEED = int(os.environ.get("DRIFT_FUZZ_SEED") or random.SystemRandom().getrandbits(32))
"""Fresh cases every run; the seed is printed with the tallies, DRIFT_FUZZ_SEED replays a run."""
REQUEST_TIMEOUT_S = 20.0
MAX_SYNC_TIMEOUT_MS = 2_000
"""Sync calls are bounded so that a generated `syncTimeoutMs` of ten minutes cannot stall the run."""
CLIENT_ERRORS = {400, 401, 403, 404, 405, 409, 413, 415, 422}
CONFORMANCE = [not_a_server_error, content_type_conformance, response_headers_conformance, response_schema_conformance]
# Refused by the guard on the literal address, before any lookup: no traffic leaves loopback.
REFUSED_CALLBACKS = ["http://169.254.169.254/latest/meta-data", "http://10.0.0.1/hook", "ftp://127.0.0.1/"]
BODY_PREFIX = "Body"


@dataclass
class Hooks(LoopbackServer):
    """A webhook receiver on 127.0.0.1 that accepts every delivery."""

    received: list[HttpRequest] = field(default_factory=list)

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        self.received.append(request)
        await self.notify()
        return HttpAnswer(204)


@pytest_asyncio.fixture(loop_scope="session")
async def hooks() -> AsyncIterator[Hooks]:
    async with Hooks() as server:
        yield server


def _with_bodies(document: dict[str, Any], bodies: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """The served document plus request bodies (JSON Schema of the Structs the handlers decode)."""
    shapes = sorted({shape for shape in bodies.values() if shape is not Any}, key=repr)
    schemas, components = msgspec.json.schema_components(
        shapes, ref_template=f"#/components/schemas/{BODY_PREFIX}{{name}}"
    )
    by_shape = dict(zip(shapes, schemas, strict=True))
    document.setdefault("components", {}).setdefault("schemas", {}).update(
        {f"{BODY_PREFIX}{name}": schema for name, schema in components.items()}
    )
    for (path, method), shape in bodies.items():
        schema = {} if shape is Any else by_shape[shape]
        operation = document["paths"][path][method]
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return document


def _bounded_gateway_bodies(document: dict[str, Any], hook_url: str) -> None:
    """Bound what a generated start or resume may ask for: short sync waits, callbacks on loopback only."""
    for name in (f"{BODY_PREFIX}StartRequest", f"{BODY_PREFIX}ResumeRequest"):
        properties = document["components"]["schemas"][name]["properties"]
        properties["syncTimeoutMs"] = {"type": "integer", "minimum": 0, "maximum": MAX_SYNC_TIMEOUT_MS}
        properties["callbackUrl"] = {"enum": [hook_url, *REFUSED_CALLBACKS]}
    retry = document["components"]["schemas"][f"{BODY_PREFIX}RetryRequest"]["properties"]
    retry["syncTimeoutMs"] = {"type": "integer", "minimum": 0, "maximum": MAX_SYNC_TIMEOUT_MS}
    retry["callbackUrl"] = {"enum": [hook_url, *REFUSED_CALLBACKS]}
    # A test run answers at its end (never sooner than 60 s for a loop): run only the bundled example, with mocks
    # and selections generated freely (an unknown instance is a 422 before anything runs).
    test = document["components"]["schemas"][f"{BODY_PREFIX}TestRequest"]["properties"]
    test["workflow"] = {"enum": [{"id": "hello_approval"}, {"id": "no_such_workflow"}]}
    test["definition"] = {"type": "null"}
    test["callbackUrl"] = {"enum": [hook_url]}


def _safe_body(hook_url: str) -> Callable[[Any], Any]:
    """Negative bodies may carry any callbackUrl; keep one the guard decides without a DNS lookup."""
    allowed = {hook_url, *REFUSED_CALLBACKS}

    def sanitise(case: Any) -> Any:
        body = case.body
        if isinstance(body, dict):
            # Only a string can be a URL (anything else is a 422 before any lookup; lists are unhashable).
            if isinstance(body.get("callbackUrl"), str) and body["callbackUrl"] not in allowed:
                body["callbackUrl"] = REFUSED_CALLBACKS[0]
            timeout = body.get("syncTimeoutMs", MAX_SYNC_TIMEOUT_MS + 1)
            if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > MAX_SYNC_TIMEOUT_MS:
                # Also when absent: the default sync wait (30 s) would spend the whole budget on one case.
                body["syncTimeoutMs"] = MAX_SYNC_TIMEOUT_MS
        return case

    return sanitise


@dataclass
class Tally:
    """What one fuzzing pass saw."""

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    ungenerated: list[str] = field(default_factory=list)
    """Operations schemathesis could not build cases for with this seed (nothing sent)."""

    def summary(self) -> str:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        skipped = f"; no cases generated for {self.ungenerated}" if self.ungenerated else ""
        return f"{self.requests} requests ({statuses}), seed {FUZZ_SEED}{skipped}"


class _BudgetSpent(Exception):
    """Raised inside a Hypothesis run to end it once its time budget is spent (caught by `_exercise`)."""


def _problem_failure(response: Any) -> str | None:
    """A client error must be a problem+json whose status is the HTTP status."""
    if response.status_code not in CLIENT_ERRORS:
        return f"undocumented status {response.status_code}"
    content_type = {name.lower(): values for name, values in response.headers.items()}.get("content-type", [""])
    if not content_type[0].startswith("application/problem+json"):
        return f"status {response.status_code} is not problem+json"
    try:
        problem = msgspec.json.decode(response.content, type=Problem)
    except msgspec.ValidationError as error:
        return f"status {response.status_code} body is not a problem: {error}"
    if problem.status != response.status_code:
        return f"problem status {problem.status} differs from the HTTP status {response.status_code}"
    return None


def fuzz(
    document: dict[str, Any],
    base_url: str,
    headers_for: Callable[[str], dict[str, str]],
    known_ids: dict[str, list[str]],
    checks: list[Any],
    sanitise: Callable[[Any], Any] = lambda case: case,
    lenient: bool = True,
) -> Tally:
    """Run every operation of `document` against `base_url`; failures are collected, not raised.

    `lenient` checks client errors for the problem+json shape instead of against the document.
    """
    schema = schemathesis.openapi.from_dict(document)
    tally = Tally()
    operations = [result.ok() for result in schema.get_all_operations()]
    pairs = 2 * len(operations)
    deadline = time.monotonic() + PASS_BUDGET_S
    for operation in operations:
        path_names = [p.name for p in operation.path_parameters]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies = [operation.as_strategy(generation_mode=mode)]
            for name in path_names:
                if known_ids.get(name):
                    # Half the cases aim at things that exist, so the success paths are fuzzed too.
                    strategies.append(
                        st.sampled_from(known_ids[name]).flatmap(
                            lambda value, name=name, mode=mode, operation=operation: operation.as_strategy(
                                generation_mode=mode, path_parameters={name: value}
                            )
                        )
                    )
            share = max(0.0, deadline - time.monotonic()) / pairs
            pairs -= 1
            _exercise(
                operation, st.one_of(strategies).map(sanitise), base_url, headers_for, checks, tally, lenient, share
            )
    return tally


def _exercise(
    operation: Any,
    strategy: st.SearchStrategy[Any],
    base_url: str,
    headers_for: Callable[[str], dict[str, str]],
    checks: list[Any],
    tally: Tally,
    lenient: bool,
    budget_s: float,
) -> None:
    """Send cases of `strategy` (at least EXAMPLES_PER_OPERATION, more while `budget_s` lasts); check each answer."""
    started = time.monotonic()
    sent = 0

    @seed(FUZZ_SEED)
    @given(case=strategy)
    @settings(
        max_examples=max(MAX_EXAMPLES, EXAMPLES_PER_OPERATION),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        verbosity=Verbosity.quiet,
    )
    def run(case: Any) -> None:
        nonlocal sent
        if sent >= EXAMPLES_PER_OPERATION and time.monotonic() - started > budget_s:
            raise _BudgetSpent
        sent += 1
        headers = headers_for(operation.label)
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_S)
        except Exception as error:
            tally.failures.append(f"{operation.label}: no answer ({error}) to {case.as_curl_command(headers=headers)}")
            return
        tally.requests += 1
        tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
        client_error = 400 <= response.status_code < 500
        try:
            # Lenient: 4xx answers are checked for the problem+json shape and status (which a document cannot
            # say); the test_every_*status_answered_is_documented tests check them against the documents.
            case.validate_response(response, checks=[not_a_server_error] if client_error and lenient else checks)
        except FailureGroup as failures:
            tally.failures.append(f"{operation.label}: {failures}")
            return
        if client_error and lenient:
            problem = _problem_failure(response)
            if problem is not None:
                tally.failures.append(f"{operation.label} {case.as_curl_command()}: {problem}")

    try:
        run()
    except _BudgetSpent:
        pass
    except InvalidSchema as error:
        # Schemathesis could not build a case for this operation with this pass's seed (seen in negative mode:
        # "Cannot generate an array with 1 demanded elements"): nothing was sent, so there is no answer to judge.
        # The pass says so with its tallies; other seeds exercise the operation.
        tally.ungenerated.append(f"{operation.label}: {error}")


DSL_BODIES: dict[tuple[str, str], Any] = {
    ("/nodeDefinition", "post"): NodeDefinition,
    ("/nodeDefinition", "put"): NodeDefinition,
    ("/workflowDefinition", "post"): WorkflowDefinition,
    ("/workflowDefinition", "put"): WorkflowDefinition,
    ("/enums/{key}", "put"): Any,
    ("/runs/{workflow_id}", "put"): RunContext,
    ("/workflowDefinition/validate", "post"): WorkflowDefinition,
    ("/bundle", "post"): Bundle,
}
GATEWAY_BODIES: dict[tuple[str, str], Any] = {
    ("/v3/workflow/start", "post"): StartRequest,
    ("/v3/workflow/resume/{workflow_id}", "put"): ResumeRequest,
    ("/v3/workflow/{workflow_id}/event/{event}", "post"): Any,
    ("/v3/workflow/{workflow_id}/disconnected-node/execute", "post"): DisconnectedRequest,
    ("/v3/schedules", "post"): ScheduleRequest,
    ("/v3/workflow/retry/{workflow_id}", "put"): RetryRequest,
    ("/v3/workflow/test", "post"): TestRequest,
}
DSL_KEY = "key-fuzz-dsl"
GATEWAY_KEY = "key-fuzz-gateway"


def _dsl_headers(label: str) -> dict[str, str]:
    if label == "PUT /runs/{workflow_id}":
        # Run contexts are written by the services: fuzz the write path, not only its 403.
        return {**bearer(SERVICE_TOKEN), "X-Drift-Tenant": "fuzzdsl"}
    return bearer(DSL_KEY)


async def _document(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/schema/openapi.json")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


async def _waiting_runs(base_url: str, count: int) -> list[str]:
    """Start `count` hello_approval runs of the gateway fuzzer's tenant; answers their ids (WAITING)."""
    ids = [f"fuzz-run-{index}" for index in range(count)]
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(GATEWAY_KEY), timeout=60) as client:
        for workflow_id in ids:
            started = await client.post(
                "/v3/workflow/start",
                json=hello(workflow_id, "Fuzz"),
            )
            assert started.json()["workflowStatus"] == "WAITING", started.text
    return ids


def _report(name: str, tally: Tally, seconds: float) -> None:
    print(f"\n[fuzz] {name}: {tally.summary()} in {seconds:.1f}s, {len(tally.failures)} failures")


async def test_dsl_store_answers_conform_to_its_openapi_document(fuzz_platform: Platform) -> None:
    """Every dsl-store operation, fed generated valid and invalid requests, answers as documented, never 5xx."""
    document = _with_bodies(await _document(fuzz_platform.dsl_store_url), DSL_BODIES)
    known = {"definition_id": ["hello_approval", "greet", "ask_approval"], "key": ["colours"]}
    started = time.monotonic()
    tally = await asyncio.to_thread(fuzz, document, fuzz_platform.dsl_store_url, _dsl_headers, known, CONFORMANCE)
    _report("dsl-store", tally, time.monotonic() - started)
    assert tally.requests >= EXAMPLES_PER_OPERATION * len(document["paths"])
    assert not tally.failures, "\n\n".join(tally.failures[:5])


async def test_gateway_answers_conform_to_its_openapi_document(fuzz_platform: Platform, hooks: Hooks) -> None:
    """Every gateway operation, fed generated valid and invalid requests, answers as documented, never 5xx."""
    document = _with_bodies(await _document(fuzz_platform.gateway_url), GATEWAY_BODIES)
    _bounded_gateway_bodies(document, f"{hooks.url}/hook")
    known = {"workflow_id": await _waiting_runs(fuzz_platform.gateway_url, 3)}
    started = time.monotonic()
    tally = await asyncio.to_thread(
        fuzz,
        document,
        fuzz_platform.gateway_url,
        lambda _: bearer(GATEWAY_KEY),
        known,
        CONFORMANCE,
        _safe_body(f"{hooks.url}/hook"),
    )
    _report("gateway", tally, time.monotonic() - started)
    assert tally.requests >= EXAMPLES_PER_OPERATION * len(document["paths"])
    assert not tally.failures, "\n\n".join(tally.failures[:5])


async def test_every_status_answered_is_documented(fuzz_platform: Platform) -> None:
    """Every status a dsl-store operation answers is in its document, with the documented content type and body."""
    document = await _document(fuzz_platform.dsl_store_url)
    checks = [status_code_conformance, *CONFORMANCE]
    tally = await asyncio.to_thread(
        fuzz, document, fuzz_platform.dsl_store_url, _dsl_headers, {}, checks, lenient=False
    )
    assert not tally.failures, "\n\n".join(tally.failures[:3])


async def test_every_gateway_status_answered_is_documented(fuzz_platform: Platform, hooks: Hooks) -> None:
    """Every status a gateway operation answers is in its document, with the documented content type and body."""
    document = _with_bodies(await _document(fuzz_platform.gateway_url), GATEWAY_BODIES)
    _bounded_gateway_bodies(document, f"{hooks.url}/hook")
    checks = [status_code_conformance, *CONFORMANCE]
    tally = await asyncio.to_thread(
        fuzz,
        document,
        fuzz_platform.gateway_url,
        lambda _: bearer(GATEWAY_KEY),
        {},
        checks,
        _safe_body(f"{hooks.url}/hook"),
        lenient=False,
    )
    assert not tally.failures, "\n\n".join(tally.failures[:3])


COMMAND_SERVICES = {"gateway", "dsl-store", "dispatcher", "notifier"}
"""With the workers: the services an accepted command passes through."""
SERVICE_CONSUMERS = (
    ("DRIFT_COMMANDS", "dispatcher"),
    ("DRIFT_EVENTS", "notifier-states"),
    ("DRIFT_EVENTS", "notifier-run-contexts"),
)


async def test_the_consumers_behind_accepted_commands_are_alive_after_the_fuzzing(
    fuzz_platform: Platform, hooks: Hooks
) -> None:
    """After the fuzzers: every service runs, every consumer drained, a new run is answered (sync and webhook)."""
    behind = [s for s in fuzz_platform.services if s.name in COMMAND_SERVICES or s.name.startswith("worker")]
    dead = [service.name for service in behind if not service.process.running]
    assert not dead, f"services died during the fuzzing: {dead}"
    connection = await nats.connect(fuzz_platform.infra.nats_url)
    try:
        js = connection.jetstream()
        # Consumer state lives in the NATS server and announces nothing: polled, with a deadline.
        deadline = time.monotonic() + 60
        while True:
            infos = [await js.consumer_info(stream, durable) for stream, durable in SERVICE_CONSUMERS]
            stuck = {i.name: (i.num_pending, i.num_ack_pending) for i in infos if i.num_pending or i.num_ack_pending}
            webhooks = await js.consumer_info("DRIFT_EVENTS", "notifier-webhooks")
            if webhooks.num_pending:  # retries of refused callbacks may still be held; nothing may be left unread
                stuck[webhooks.name] = (webhooks.num_pending, webhooks.num_ack_pending)
            if not stuck:
                break
            assert time.monotonic() < deadline, f"consumers not drained after the fuzzing: {stuck}"
            await asyncio.sleep(0.5)
    finally:
        await connection.close()
    suffix = FUZZ_SEED % 100_000
    async with httpx.AsyncClient(base_url=fuzz_platform.gateway_url, headers=bearer(GATEWAY_KEY), timeout=60) as gw:
        sync = await gw.post(
            "/v3/workflow/start",
            json=hello(f"alive-{suffix}", "A"),
        )
        assert sync.status_code == 200 and sync.json()["workflowStatus"] == "WAITING", sync.text
        hooked = await gw.post(
            "/v3/workflow/start",
            json=hello(f"alive-hook-{suffix}", "A", callbackUrl=f"{hooks.url}/hook"),
        )
        assert hooked.status_code == 202, hooked.text
    assert await hooks.holds_within(
        lambda: any(f"alive-hook-{suffix}".encode() in r.body for r in hooks.received), 30
    ), "no webhook for a run started after the fuzzing"
