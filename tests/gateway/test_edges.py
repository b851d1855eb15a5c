"""The gateway's edges on real NATS and Temporal: exact ids, per-tenant limits, truthful answers, header limits.

The gateway runs in-process with Redis at a port nothing listens on (its slowest failure: every
Redis call fails, so answers can only come over NATS), and no dispatcher: where a test needs one,
it plays the dispatcher's part on the real command and event subjects.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import nats
import pytest
import pytest_asyncio
from nats.aio.msg import Msg
from support.served import served
from temporalio.client import WorkflowExecutionStatus

from drift_cli.config import dev_allow_hosts
from drift_cli.servers import InfraStack
from drift_gateway.app import create_app
from drift_gateway.commands import settled_for
from drift_gateway.limits import Fairness, TenantLimits
from drift_gateway.run_state import closed_in_temporal
from drift_runtime.auth import ApiKeys
from drift_runtime.ssrf import Guard, SsrfRefused, parse_hosts
from drift_runtime.web import MAX_CALLER_HEADER_CHARS, TooManyRequests, oversized_header
from drift_schema import ids, subjects
from drift_schema.api import StartRequest, WorkflowResponse
from drift_schema.codec import DecodeError, check_depth, decode, nesting_depth
from drift_schema.events import WorkflowEvent
from drift_schema.run import RunSnapshot
from drift_schema.statuses import RejectionCode, WorkflowStatus
from gateway.gateway_support import redisless_settings

ACME = {"Authorization": "Bearer key-acme"}


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(infra: InfraStack) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway in-process on the real NATS and Temporal; Redis unreachable; acme limited to 2 sync calls."""
    settings = redisless_settings(
        infra,
        "drift-gateway-edges",
        ApiKeys({"key-acme": "acme", "key-globex": "globex"}),
        tenant_limits={"acme": TenantLimits(sync_waiters=2)},
    )
    async with served(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        yield client


# -- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (ids.is_workflow_id, "run-1_A", ["run-1\n", "", "a" * 129, "a.b", "a b", "a*", "a>", "é"]),
        (ids.is_tenant, "acme", ["acme\n", "", "ac.me", "ac*me"]),
        (ids.is_definition_id, "node.v1-x_y", ["node\n", "", "a" * 129, "a/b", "a b"]),
        (ids.is_event_name, "go.now", ["go\n", "", "go/now"]),
    ],
)
def test_ids_are_checked_exactly(check: Any, good: str, bad: list[str]) -> None:
    """Each id validator accepts its shape and refuses a trailing newline, emptiness, overlong and stray characters."""
    assert check(good)
    for value in bad:
        assert not check(value), repr(value)
    assert not check(None)


def test_decoded_bodies_refuse_ids_with_a_trailing_newline() -> None:
    """The Struct patterns refuse `\\n` at the end of `workflowId` and `workflow.id`, with their pointers."""
    for body, pointer in (
        (b'{"workflow": {"id": "a"}, "workflowId": "x\\n"}', "/workflowId"),
        (b'{"workflow": {"id": "a\\n"}}', "/workflow/id"),
        (b'{"workflow": {"id": "a", "version": "' + b"9" * 5000 + b'"}}', "/workflow/version"),
    ):
        with pytest.raises(DecodeError) as raised:
            decode(body, StartRequest)
        assert raised.value.pointer == pointer


# -- the dev allow-list -----------------------------------------------------------------------------


async def test_the_dev_allow_list_keeps_drifts_own_ports_out_of_reach_on_loopback() -> None:
    """`drift dev`'s allow-list still allows loopback stubs, but refuses each of Drift's own ports on every alias."""
    listed = dev_allow_hosts("localhost,127.0.0.1,::1", [8233, 7233, 4222])
    guard = Guard(parse_hosts(listed))
    assert (await guard.vet("http://127.0.0.1:18080/stub")).port == 18080
    for url in ("http://127.0.0.1:8233/api/v1/namespaces", "http://[::1]:7233/", "http://0x7f.1:4222/"):
        with pytest.raises(SsrfRefused, match="Drift's own servers"):
            await guard.vet(url)
    # A user's own allow-list gets the same ports taken back.
    assert dev_allow_hosts("10.0.0.5", [6379]) == "10.0.0.5,!6379"


# -- fairness ---------------------------------------------------------------------------------------


def test_the_start_bucket_refuses_past_its_burst_and_refills_at_its_rate() -> None:
    """A tenant gets `startsBurst` starts at once, then 429 with Retry-After; other tenants are not touched."""
    fairness = Fairness(per_tenant={"mallory": TenantLimits(starts_per_second=1000.0, starts_burst=3)})
    for _ in range(3):
        fairness.take_start("mallory")
    with pytest.raises(TooManyRequests) as refused:
        fairness.take_start("mallory")
    assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) >= 1
    for _ in range(50):
        fairness.take_start("globex")  # the default limits: 400 at once
    deadline = time.monotonic() + 5
    while True:  # refills at 1,000 per second: a token within a few milliseconds
        try:
            fairness.take_start("mallory")
            break
        except TooManyRequests:
            assert time.monotonic() < deadline


def test_sync_waiter_slots_are_per_tenant_and_given_back() -> None:
    """A tenant holding all its sync slots is refused another; another tenant is not; a slot is given back on exit."""
    fairness = Fairness(per_tenant={"mallory": TenantLimits(sync_waiters=2)})
    with fairness.sync_waiter("mallory"), fairness.sync_waiter("mallory"):
        with pytest.raises(TooManyRequests), fairness.sync_waiter("mallory"):
            pass
        with fairness.sync_waiter("globex"):
            assert fairness.open_sync_calls("globex") == 1
    assert fairness.open_sync_calls("mallory") == 0
    with fairness.sync_waiter("mallory"):
        pass


async def test_sync_calls_past_the_tenants_bound_answer_429(gateway: httpx.AsyncClient, infra: InfraStack) -> None:
    """With acme's two sync slots held by open calls, a third sync call answers 429 problem+json at once."""
    nc = await nats.connect(infra.nats_url)
    sent = await nc.subscribe(subjects.command("acme", "start"))
    held = [
        asyncio.ensure_future(
            gateway.post(
                "/v3/workflow/start",
                json={"workflow": {"id": "nothing"}, "workflowId": f"edges-{uuid.uuid4().hex}", "syncTimeoutMs": 5000},
                headers=ACME,
            )
        )
        for _ in range(2)
    ]
    try:
        # Both held calls have published their command, so both hold their slot until their deadline.
        for _ in range(2):
            await sent.next_msg(timeout=10)
        third = await gateway.post(
            "/v3/workflow/start", json={"workflow": {"id": "nothing"}, "syncTimeoutMs": 5000}, headers=ACME
        )
        assert third.status_code == 429, third.text
        assert third.headers["content-type"] == "application/problem+json"
        assert int(third.headers["retry-after"]) >= 1
        other = await gateway.post(
            "/v3/workflow/start",
            json={"workflow": {"id": "nothing"}, "syncTimeoutMs": 0},
            headers={"Authorization": "Bearer key-globex"},
        )
        assert other.status_code == 202, other.text
    finally:
        await nc.close()
        await asyncio.gather(*held)


async def test_a_limited_rejection_answers_429_with_retry_after(gateway: httpx.AsyncClient, infra: InfraStack) -> None:
    """A REJECTED event with errorCode LIMITED (the dispatcher's concurrent-runs limit) answers 429 with Retry-After."""
    workflow_id = f"edges-{uuid.uuid4().hex}"
    nc = await nats.connect(infra.nats_url)

    async def reject(msg: Msg) -> None:
        command_id = (msg.headers or {}).get("Nats-Msg-Id", "")
        event = WorkflowEvent(
            workflow_id=workflow_id,
            workflow_status=WorkflowStatus.REJECTED,
            error_message="over 5 concurrent runs for this tenant",
            event_id=f"rejected:{command_id}",
            tenant="acme",
            seq=0,
            command_id=command_id,
            error_code=RejectionCode.LIMITED,
        )
        await nc.publish(subjects.workflow_events("acme", workflow_id), msgspec.json.encode(event))

    sub = await nc.subscribe(subjects.command("acme", "start"), cb=reject)
    try:
        answer = await gateway.post(
            "/v3/workflow/start",
            json={"workflow": {"id": "anything"}, "workflowId": workflow_id, "syncTimeoutMs": 20_000},
            headers=ACME,
        )
    finally:
        await sub.unsubscribe()
        await nc.close()
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) >= 1
    assert "concurrent runs" in answer.json()["detail"]


# -- answers that say what is true -----------------------------------------------------------------


async def test_resume_and_event_of_an_unknown_run_answer_404_while_redis_is_out(gateway: httpx.AsyncClient) -> None:
    """With Redis unreachable and no dispatcher, a resume or event for an unknown run answers 404 at once, not 202."""
    workflow_id = f"edges-missing-{uuid.uuid4().hex}"
    resume = await gateway.put(
        f"/v3/workflow/resume/{workflow_id}",
        json={"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}, "syncTimeoutMs": 20_000},
        headers=ACME,
    )
    assert resume.status_code == 404, resume.text
    assert resume.headers["content-type"] == "application/problem+json"
    event = await gateway.post(f"/v3/workflow/{workflow_id}/event/go", json={}, headers=ACME)
    assert event.status_code == 404, event.text


async def test_an_empty_selection_answers_422_with_a_pointer(gateway: httpx.AsyncClient) -> None:
    """`selectedOptions: {}` answers 422 pointing at /viewResponse/selectedOptions, before anything is sent."""
    answer = await gateway.put(
        "/v3/workflow/resume/edges-any", json={"viewResponse": {"selectedOptions": {}}}, headers=ACME
    )
    assert answer.status_code == 422, answer.text
    assert [error["pointer"] for error in answer.json()["errors"]] == ["/viewResponse/selectedOptions"]


def test_a_stable_state_found_at_the_deadline_answers_the_caller() -> None:
    """At the sync deadline a stable state caused by the caller's command (or, for a start, by its run) is a 200."""
    mine = WorkflowEvent(
        workflow_id="r", workflow_status=WorkflowStatus.WAITING, event_id="e", tenant="t", seq=2, command_id="c1"
    )
    before = msgspec.structs.replace(mine, command_id="c0")
    running = msgspec.structs.replace(mine, workflow_status=WorkflowStatus.RUNNING)
    assert settled_for(mine, "resume", "c1")
    assert not settled_for(before, "resume", "c1")  # the WAITING a resume started from
    assert settled_for(before, "start", "c1")
    assert not settled_for(running, "start", "c1")
    queried = WorkflowResponse(workflow_id="r", workflow_status=WorkflowStatus.WAITING)
    assert settled_for(queried, "start", "c1") and not settled_for(queried, "event", "c1")


# -- headers ----------------------------------------------------------------------------------------


def test_header_limits() -> None:
    """Oversized single headers, header totals and caller-id headers are refused with a reason; normal ones pass."""
    assert oversized_header([(b"authorization", b"Bearer k")]) is None
    assert oversized_header([(b"authorization", b"B" * 50_000_000)]) is not None
    assert oversized_header([(b"x-user-id", b"u" * (MAX_CALLER_HEADER_CHARS + 1))]) is not None
    assert oversized_header([(b"x-user-id", b"u" * MAX_CALLER_HEADER_CHARS)]) is None
    assert oversized_header([(f"x-h{i}".encode(), b"v" * 4000) for i in range(10)]) is not None


async def test_oversized_headers_answer_431_before_authentication(gateway: httpx.AsyncClient) -> None:
    """A 1 MB Authorization and a 900 KB X-User-Id answer 431 problem+json on the gateway."""
    huge = await gateway.get("/v3/workflow/x", headers={"Authorization": "Bearer " + "k" * 1_000_000})
    assert huge.status_code == 431 and huge.headers["content-type"] == "application/problem+json"
    assert huge.json()["status"] == 431
    user = await gateway.post(
        "/v3/workflow/start", json={"workflow": {"id": "x"}}, headers={**ACME, "X-User-Id": "u" * 900_000}
    )
    assert user.status_code == 431, user.text


def test_a_run_temporal_closed_reads_failed_unless_it_said_its_own_end() -> None:
    """A run Temporal timed out, failed or canceled reads FAILED with a reason when its own last word was not final."""
    waiting = RunSnapshot(workflow_id="r", workflow_status=WorkflowStatus.WAITING, disposition="ASKED", view={"a": 1})
    for status in (
        WorkflowExecutionStatus.TIMED_OUT,
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.CANCELED,
    ):
        closed = closed_in_temporal(status, waiting)
        assert closed is not None
        assert (closed.workflow_status, closed.disposition, closed.view) == (WorkflowStatus.FAILED, None, None)
        assert closed.error_message
    done = msgspec.structs.replace(waiting, workflow_status=WorkflowStatus.COMPLETED)
    assert closed_in_temporal(WorkflowExecutionStatus.FAILED, done) is None
    assert closed_in_temporal(WorkflowExecutionStatus.RUNNING, waiting) is None
    assert closed_in_temporal(None, waiting) is None


def test_nesting_depth_is_measured_without_parsing_and_strings_do_not_count() -> None:
    """Brackets inside strings (escaped quotes included) are not structure; depth is the deepest open bracket."""
    assert nesting_depth(b'{"a": "[[[[", "b": [1, {"c": "\\"[{"}]}') == 3
    assert nesting_depth(b"1") == 0
    check_depth(b"[" * 128 + b"]" * 128)
    with pytest.raises(DecodeError, match="129 levels deep"):
        check_depth(b"[" * 129 + b"]" * 129)
    check_depth(b'["' + b"[" * 10_000 + b'"]')  # one string: depth 1
