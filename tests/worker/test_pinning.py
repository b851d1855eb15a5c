"""Pinning: what the dispatcher resolved at start is what a run uses, across continue-as-new, disconnected nodes too."""

from __future__ import annotations

from typing import Any

from drift_dispatcher.commands import CommandDispatcher
from drift_runtime.temporal import run_result
from drift_schema.api import WorkflowRef
from drift_schema.commands import StartCommand
from drift_schema.run import (
    DISCONNECTED_UPDATE,
    EVENT_UPDATE,
    DisconnectedInput,
    DisconnectedResult,
    EventInput,
    RunSnapshot,
    temporal_id,
)
from drift_schema.workflow import WorkflowDefinition
from drift_worker.workflow import CONTINUE_AS_NEW_AFTER_SEGMENTED_VISITS
from worker.test_dispatch_children import StoreAtStart
from worker.worker_support import TENANT, EventTap, Runner, count_to, definition, new_id, script, state, success

# Two visits per iteration: past the visits a run makes before it continues as new.
ITERATIONS = CONTINUE_AS_NEW_AFTER_SEGMENTED_VISITS // 2 + 100


def looping(version: str) -> WorkflowDefinition:
    """A loop long enough to continue-as-new, an event wait, and a disconnected node; `version` marks every output."""
    return definition(
        {
            **count_to(ITERATIONS, "hold"),
            "hold": state({"type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "go"}}, "done"),
            "done": success(f"{{% '{version} after ' & $string($global.count) %}}"),
            "which": script(f"{{% '{version}' %}}"),
        },
        start="count",
        id="pinned_loop",
        version=version,
    )


async def test_a_running_run_keeps_its_definitions_across_continue_as_new(runner: Runner, tap: EventTap) -> None:
    """Activating another version mid-run changes nothing: after continue-as-new the main path and a
    disconnected node still run the version resolved at start, and the store is never asked again."""
    store = StoreAtStart({("pinned_loop", "ACTIVE"): looping("1")})
    dispatcher = CommandDispatcher(runner.client, None, store, runner.task_queue)  # type: ignore[arg-type]
    public = new_id("pin")
    await dispatcher.start(TENANT, StartCommand(workflow=WorkflowRef(id="pinned_loop"), workflow_id=public), "c-1")
    # "Activate" version 2 while the run is in flight.
    store.definitions[("pinned_loop", "ACTIVE")] = looping("2")
    await tap.status(public, "WAITING", timeout=120)
    handle = runner.client.get_workflow_handle(temporal_id(TENANT, public), result_type=RunSnapshot)
    described = await handle.describe()
    assert described.run_id != (await _first_run_id(handle)), "the loop should have continued as new"
    request = DisconnectedInput(node="which", parameters={}, command_id="d-1")
    which: Any = await handle.execute_update(DISCONNECTED_UPDATE, request, result_type=DisconnectedResult)
    assert (which.status, which.response) == ("SUCCESS", "1")
    await handle.execute_update(EVENT_UPDATE, EventInput(event="go", payload=None, command_id="e-1"))
    snapshot = await run_result(handle)
    assert snapshot.disposition == f"1 after {ITERATIONS}"
    assert store.asked == [("pinned_loop", "ACTIVE")]


async def _first_run_id(handle: Any) -> str:
    """The run id the chain started with (the handle follows the latest run)."""
    async for event in handle.fetch_history_events():
        attributes = event.workflow_execution_started_event_attributes
        return str(attributes.first_execution_run_id)
    raise AssertionError("no history")
