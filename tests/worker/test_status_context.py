"""Stable status events carry the run's context for the run-context store; a too-large one is left out."""

from __future__ import annotations

from drift_runtime.temporal import run_result
from drift_schema.workflow import WorkflowDefinition
from drift_worker.activities import MAX_EVENT_CONTEXT_BYTES
from worker.worker_support import EventTap, Runner, definition, script, success


def _greeting() -> WorkflowDefinition:
    return definition(
        {
            "greet": script("{% 'Hello, ' & $global.params.name %}", "done"),
            "done": success("{% $global.greet %}"),
        }
    )


async def test_stable_status_events_carry_the_context(runner: Runner, tap: EventTap) -> None:
    """COMPLETED carries `$global` (params and node outputs); RUNNING, not a stable state, carries none."""
    public, handle = await runner.start(_greeting(), {"name": "Ada"})
    await run_result(handle)
    completed = await tap.status(public, "COMPLETED")
    assert completed["context"]["params"] == {"name": "Ada"}
    assert completed["context"]["greet"] == "Hello, Ada"
    assert completed["contextOmitted"] is False
    running = await tap.status(public, "RUNNING")
    assert running["context"] is None


async def test_a_context_too_large_for_an_event_is_left_out_and_flagged(runner: Runner, tap: EventTap) -> None:
    """Past MAX_EVENT_CONTEXT_BYTES the event still goes out, without the context and with `contextOmitted`."""
    blob = "x" * (MAX_EVENT_CONTEXT_BYTES + 1)
    public, snapshot = await runner.finish(_greeting(), {"name": "Big", "blob": blob})
    assert snapshot.context["params"]["blob"] == blob
    completed = await tap.status(public, "COMPLETED")
    assert completed["context"] is None
    assert completed["contextOmitted"] is True
    assert completed["disposition"] == "Hello, Big"
