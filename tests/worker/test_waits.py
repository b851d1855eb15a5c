"""WAIT (timer, absolute time, named event) and INSTRUCTION waits: statuses, updates and their validators."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from drift_runtime.temporal import run_result
from drift_schema.run import EVENT_UPDATE, RESUME_UPDATE, EventInput, ResumeInput
from worker.worker_support import EventTap, Runner, definition, script, state, success


def wait(config: dict[str, Any], next_node: str = "done") -> dict[str, Any]:
    return state({"type": "WAIT", "config": config}, next_node)


def rejection(error: WorkflowUpdateFailedError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def test_scheduler_wait_holds_the_run_scheduler_waiting(runner: Runner, tap: EventTap) -> None:
    """SCHEDULER_WAIT shows SCHEDULER_WAITING for its duration on a Temporal timer, then goes on."""
    wf = definition({"pause": wait({"waitType": "SCHEDULER_WAIT", "duration": 1}), "done": success()})
    public, handle = await runner.start(wf)
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.context["pause"] == {"waitedSeconds": 1}
    assert tap.statuses(public)[:3] == ["RUNNING", "SCHEDULER_WAITING", "RUNNING"]
    history = await handle.fetch_history()
    assert any(event.HasField("timer_started_event_attributes") for event in history.events)


async def test_absolute_wait_in_the_past_continues_at_once(runner: Runner, tap: EventTap) -> None:
    """An ABSOLUTE_WAIT whose time has passed continues without waiting."""
    wf = definition(
        {"pause": wait({"waitType": "ABSOLUTE_WAIT", "timestamp": "2001-02-03T04:05:06Z"}), "done": success()}
    )
    public, snapshot = await runner.finish(wf)
    assert snapshot.context["pause"] == {"until": "2001-02-03T04:05:06.000Z"}
    assert "SCHEDULER_WAITING" not in tap.statuses(public)


async def test_absolute_wait_from_an_expression_waits_until_then(runner: Runner, tap: EventTap) -> None:
    """An ABSOLUTE_WAIT timestamp may be an expression; the run waits SCHEDULER_WAITING until that time."""
    wf = definition(
        {
            "pause": wait({"waitType": "ABSOLUTE_WAIT", "timestamp": "{% $fromMillis($millis() + 1000) %}"}),
            "done": success(),
        }
    )
    public, handle = await runner.start(wf)
    await tap.status(public, "SCHEDULER_WAITING")
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "COMPLETED"


async def test_bad_absolute_timestamp_fails_the_node(runner: Runner) -> None:
    """A timestamp that is not RFC 3339 fails the node, naming the field."""
    wf = definition(
        {"pause": wait({"waitType": "ABSOLUTE_WAIT", "timestamp": "{% 'next tuesday' %}"}), "done": success()}
    )
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == "config/timestamp: 'next tuesday' is not an RFC 3339 timestamp"


async def test_on_event_resumes_with_the_payload_as_output(runner: Runner, tap: EventTap) -> None:
    """ON_EVENT holds the run WAITING; the `event` update's payload becomes the instance's output."""
    wf = definition(
        {
            "await_payment": wait({"waitType": "ON_EVENT", "event": "paid"}, "thank"),
            "thank": script("{% 'paid ' & $string($global.await_payment.amount) %}", "done"),
            "done": success("{% $global.thank %}"),
        }
    )
    public, handle = await runner.start(wf)
    waiting = await tap.status(public, "WAITING")
    assert waiting["currentNode"] == "await_payment"
    await handle.execute_update(EVENT_UPDATE, EventInput(event="paid", payload={"amount": 12}, command_id="evt-1"))
    snapshot = await run_result(handle)
    assert snapshot.disposition == "paid 12"
    assert snapshot.context["await_payment"] == {"amount": 12}
    running = [e for e in tap.workflow[public] if e["workflowStatus"] == "RUNNING"][-1]
    assert running["commandId"] == "evt-1"


async def test_event_for_another_name_or_no_wait_is_refused_with_conflict(runner: Runner, tap: EventTap) -> None:
    """An event the run is not waiting for, or a resume while it waits for an event, is refused with CONFLICT."""
    wf = definition({"hold": wait({"waitType": "ON_EVENT", "event": "go"}), "done": success()})
    public, handle = await runner.start(wf)
    await tap.status(public, "WAITING")
    with pytest.raises(WorkflowUpdateFailedError) as wrong_name:
        await handle.execute_update(EVENT_UPDATE, EventInput(event="stop", payload=None, command_id="e-1"))
    assert rejection(wrong_name.value) == "CONFLICT"
    with pytest.raises(WorkflowUpdateFailedError) as resume:
        await handle.execute_update(RESUME_UPDATE, ResumeInput(selected_options={}, command_id="r-1"))
    assert rejection(resume.value) == "CONFLICT"
    await handle.execute_update(EVENT_UPDATE, EventInput(event="go", payload="now", command_id="e-2"))
    assert (await run_result(handle)).context["hold"] == "now"


async def test_on_event_timeout_takes_the_default_failure_path(runner: Runner, tap: EventTap) -> None:
    """An ON_EVENT wait whose timeoutSeconds passes fails the node, into `defaultFailureNode`."""
    wf = definition(
        {
            "hold": wait({"waitType": "ON_EVENT", "event": "never", "timeoutSeconds": 1}),
            "done": success(),
            "timed_out": success("{% 'TIMED OUT: ' & $global.lastError.message %}"),
        },
        start="hold",
        defaultFailureNode="timed_out",
    )
    public, snapshot = await runner.finish(wf)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.disposition == "TIMED OUT: event 'never' did not arrive within 1 seconds"
    failed = await tap.node(public, "hold")
    assert failed["status"] == "FAILED"
    assert tap.statuses(public) == ["RUNNING", "WAITING", "RUNNING", "COMPLETED"]


def instruction(view: dict[str, Any], next_node: str = "route", **extra: Any) -> dict[str, Any]:
    return state({"type": "INSTRUCTION", "view": view, **extra}, next_node)


async def test_instruction_waits_and_keeps_selections(runner: Runner, tap: EventTap) -> None:
    """INSTRUCTION renders its view (expressions anywhere), goes WAITING, and keeps the resume's selections."""
    view = {
        "layoutId": "{% 'screen_' & $global.params.kind %}",
        "inputOptions": [
            {
                "id": "mode",
                "description": "{% 'Refund ' & $string($global.params.amount) %}",
                "possibleValues": [{"value": "SOURCE"}, {"value": "WALLET"}],
                "possibleDependentValues": {
                    "WALLET": {"id": "wallet", "possibleValues": [{"value": "MAIN"}, {"value": "GIFT"}]}
                },
            }
        ],
    }
    wf = definition(
        {
            "ask": instruction(view, disposition="ASKED"),
            "route": success("{% $global.ask.selectedOptions.mode & '/' & $global.ask.selectedOptions.wallet %}"),
        }
    )
    public, handle = await runner.start(wf, {"kind": "refund", "amount": 30})
    waiting = await tap.status(public, "WAITING")
    assert waiting["view"]["layoutId"] == "screen_refund"
    assert waiting["view"]["inputOptions"][0]["description"] == "Refund 30"
    assert waiting["disposition"] == "ASKED"
    with pytest.raises(WorkflowUpdateFailedError) as bad:
        await handle.execute_update(
            RESUME_UPDATE, ResumeInput(selected_options={"mode": "SOURCE", "wallet": "MAIN"}, command_id="r-bad")
        )
    assert rejection(bad.value) == "INVALID"
    await handle.execute_update(
        RESUME_UPDATE, ResumeInput(selected_options={"mode": "WALLET", "wallet": "GIFT"}, command_id="r-ok")
    )
    snapshot = await run_result(handle)
    assert snapshot.disposition == "WALLET/GIFT"
    assert snapshot.context["ask"] == {"selectedOptions": {"mode": "WALLET", "wallet": "GIFT"}}
    completed = await tap.node(public, "ask")
    assert completed["output"] == {"selectedOptions": {"mode": "WALLET", "wallet": "GIFT"}}


async def test_instruction_options_from_an_expression(runner: Runner, tap: EventTap) -> None:
    """`inputOptions` may be one expression yielding the options; their possibleValues are enforced."""
    wf = definition(
        {
            "options": script(
                "{% [{'id': 'pick', 'possibleValues': $map($global.params.choices, function($c) {{'value': $c}})}] %}",
                "ask",
            ),
            "ask": instruction({"inputOptions": "{% $global.options %}"}),
            "route": success("{% $global.ask.selectedOptions.pick %}"),
        }
    )
    public, handle = await runner.start(wf, {"choices": ["A", "B"]})
    await tap.status(public, "WAITING")
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(RESUME_UPDATE, ResumeInput(selected_options={"pick": "C"}, command_id="r-1"))
    await handle.execute_update(RESUME_UPDATE, ResumeInput(selected_options={"pick": "B"}, command_id="r-2"))
    assert (await run_result(handle)).disposition == "B"
