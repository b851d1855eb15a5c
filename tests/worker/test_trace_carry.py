"""The trace context of the command being applied survives continue-as-new."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from drift_runtime.temporal import run_result
from drift_schema import subjects
from drift_schema.run import EVENT_UPDATE, EventInput, temporal_id
from drift_worker.workflow import CONTINUE_AS_NEW_AFTER_SEGMENTED_VISITS
from worker.worker_support import TENANT, EventTap, Runner, count_to, definition, state, success

# Two visits per iteration: past the visits a run makes before it continues as new.
ITERATIONS = CONTINUE_AS_NEW_AFTER_SEGMENTED_VISITS // 2 + 100


def loop_after_event(iterations: int) -> Any:
    """Wait for event `go`, then count to `iterations` (long enough to continue-as-new), then succeed."""
    return definition(
        {
            "hold": state({"type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "go"}}, "count"),
            **count_to(iterations),
            "done": success("{% $global.count %}"),
        },
        start="hold",
    )


async def test_status_events_after_continue_as_new_stay_in_the_commands_trace(
    runner: Runner, nats_client: NatsClient, tap: EventTap
) -> None:
    """An event command's trace context is carried into the next run of the chain: the COMPLETED status
    event, published after continue-as-new, is still in the command's trace."""
    trace_id = secrets.token_hex(16)
    carrier = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    public, handle = await runner.start(loop_after_event(ITERATIONS))
    completed: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()

    async def on_status(msg: Msg) -> None:
        if msgspec.json.decode(msg.data)["workflowStatus"] == "COMPLETED" and not completed.done():
            completed.set_result(msg)

    subscription = await nats_client.subscribe(subjects.workflow_events(TENANT, public), cb=on_status)
    try:
        await tap.status(public, "WAITING")
        await handle.execute_update(
            EVENT_UPDATE, EventInput(event="go", payload=None, command_id="go", trace_context=carrier)
        )
        snapshot = await run_result(handle)
        assert snapshot.disposition == ITERATIONS
        message = await asyncio.wait_for(completed, 30)
    finally:
        await subscription.unsubscribe()

    first_run = runner.client.get_workflow_handle(temporal_id(TENANT, public), run_id=handle.first_execution_run_id)
    history = await first_run.fetch_history()
    assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    traceparent = (message.headers or {}).get("traceparent", "")
    assert traceparent.split("-")[1:2] == [trace_id], traceparent
