"""timeoutMs of CHILD, WAIT and INSTRUCTION nodes, and the node types that refuse retry or timeoutMs."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from drift_runtime.temporal import run_result
from drift_schema.graph import node_errors
from drift_schema.nodes import NodeDefinition, child_key
from worker.worker_support import EventTap, Runner, definition, failure, state, success

FAILURE_PATH = {"defaultFailureNode": "failed"}
FAILED = failure("{% $global.lastError.node & ': ' & $global.lastError.message %}")


def wait(config: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
    return state({"type": "WAIT", "config": config, "timeoutMs": timeout_ms}, "done")


async def test_scheduler_wait_longer_than_timeout_fails_to_the_failure_path(runner: Runner, tap: EventTap) -> None:
    """A SCHEDULER_WAIT longer than its timeoutMs fails when timeoutMs passes, into defaultFailureNode."""
    wf = definition(
        {
            "pause": wait({"waitType": "SCHEDULER_WAIT", "duration": 3600}, 300),
            "done": success(),
            "failed": FAILED,
        },
        **FAILURE_PATH,
    )
    public, snapshot = await runner.finish(wf)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == (
        "pause: the wait of 3600 seconds is longer than its timeoutMs (300 ms): failed after 0.3 seconds"
    )
    assert (await tap.node(public, "pause"))["status"] == "FAILED"


async def test_scheduler_wait_within_timeout_completes(runner: Runner) -> None:
    """A wait shorter than its timeoutMs simply completes."""
    wf = definition({"pause": wait({"waitType": "SCHEDULER_WAIT", "duration": 0.1}, 5000), "done": success()})
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.context["pause"] == {"waitedSeconds": 0.1}


async def test_on_event_wait_fails_at_timeout_ms(runner: Runner) -> None:
    """An ON_EVENT wait fails when its timeoutMs passes before the event (and before its own timeoutSeconds)."""
    config = {"waitType": "ON_EVENT", "event": "paid", "timeoutSeconds": 3600}
    wf = definition({"pay": wait(config, 300), "done": success(), "failed": FAILED}, **FAILURE_PATH)
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == "pay: event 'paid' did not arrive within timeoutMs (300 ms)"


async def test_instruction_nobody_answers_fails_to_the_failure_path(runner: Runner, tap: EventTap) -> None:
    """An INSTRUCTION nobody answers within timeoutMs goes WAITING, then fails into defaultFailureNode."""
    ask = state({"type": "INSTRUCTION", "view": {"inputOptions": [{"id": "ok"}]}, "timeoutMs": 400}, "done")
    wf = definition({"ask": ask, "done": success(), "failed": FAILED}, **FAILURE_PATH)
    public, handle = await runner.start(wf)
    await tap.status(public, "WAITING")
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == "ask: nobody answered within timeoutMs (400 ms)"
    assert snapshot.view is None


async def test_sync_child_that_times_out_is_cancelled_and_fails_the_node(runner: Runner, tap: EventTap) -> None:
    """A SYNC CHILD outliving its timeoutMs fails the node to the failure path; the child announces TERMINATED."""
    waiter = definition(
        {"hold": state({"type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "go"}}, "done"), "done": success()},
        id="waiter",
    )
    call = {"type": "CHILD", "childWorkflowId": "waiter", "executionMode": "SYNC", "timeoutMs": 500}
    wf = definition({"call": state(call, "done"), "done": success(), "failed": FAILED}, **FAILURE_PATH)
    public, snapshot = await runner.finish(wf, children={child_key("waiter", "ACTIVE"): waiter})
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    assert "did not finish within timeoutMs (500 ms): cancelled" in snapshot.error_message
    child_id = snapshot.error_message.split("'")[1]
    assert child_id.startswith(f"{public}-call-")
    ended = await tap.status(child_id, "TERMINATED")
    assert ended["errorMessage"] == "cancelled by its parent run"


def _node(body: dict[str, Any]) -> NodeDefinition:
    return msgspec.convert({"id": "n", **body}, NodeDefinition)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "pointers"),
    [
        ({"type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 1}, "retry": {}}, {"/retry"}),
        ({"type": "INSTRUCTION", "retry": {"maxAttempts": 2}}, {"/retry"}),
        ({"type": "CHILD", "childWorkflowId": "c", "executionMode": "SYNC", "retry": {}}, {"/retry"}),
        ({"type": "CHILD", "childWorkflowId": "c", "executionMode": "ASYNC", "timeoutMs": 5}, {"/timeoutMs"}),
        ({"type": "PARALLEL", "branches": [], "timeoutMs": 5, "retry": {}}, {"/retry", "/timeoutMs"}),
    ],
)
def test_types_that_cannot_honour_retry_or_timeout_refuse_them(body: dict[str, Any], pointers: set[str]) -> None:
    """retry/timeoutMs a node type cannot honour are refused at validation with a pointer to the field."""
    assert {error.pointer for error in node_errors(_node(body))} == pointers


@pytest.mark.parametrize(
    "body",
    [
        {"type": "WAIT", "config": {"waitType": "SCHEDULER_WAIT", "duration": 1}, "timeoutMs": 5},
        {"type": "INSTRUCTION", "timeoutMs": 5},
        {"type": "CHILD", "childWorkflowId": "c", "executionMode": "SYNC", "timeoutMs": 5},
        {"type": "HTTP", "request": {"url": "http://x"}, "timeoutMs": 5, "retry": {"maxAttempts": 3}},
        {"type": "SCRIPT", "output": 1, "timeoutMs": 5, "retry": {"maxAttempts": 3}},
    ],
)
def test_types_that_honour_timeouts_accept_them(body: dict[str, Any]) -> None:
    """Node types that honour timeoutMs (and HTTP/pure nodes retry) pass validation."""
    assert node_errors(_node(body)) == []
