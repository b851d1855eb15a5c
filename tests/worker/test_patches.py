"""A run started now records one patch marker for every patch of the interpreter, and skips upserts nobody sees."""

from __future__ import annotations

import json
from typing import Any

from temporalio.api.enums.v1 import EventType

from drift_runtime.temporal import run_result
from drift_schema import search
from drift_worker import patches
from worker.test_segments import chain
from worker.worker_support import Runner, Stub, definition, script, state, success

CHANGE_VERSION = "TemporalChangeVersion"


async def history_records(handle: Any) -> tuple[list[str], int, list[str]]:
    """A run's patch marker ids, its change-version upserts, and the statuses and activities it recorded, in order."""
    history = await handle.fetch_history()
    markers, versions, steps = [], 0, []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_patch":
                markers.append(json.loads(next(iter(marker.details.values())).payloads[0].data)["id"])
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            versions += CHANGE_VERSION in fields
            if search.STATUS in fields:
                steps.append(json.loads(fields[search.STATUS].data))
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            steps.append("activity")
    return markers, versions, steps


async def test_a_new_pure_run_records_the_current_marker_and_its_final_status_alone(runner: Runner) -> None:
    """A chain that runs in segments and ends in one: one marker, one version upsert, and COMPLETED upserted alone
    (its RUNNING would have been replaced in the same workflow task, before anyone could list it)."""
    _, handle = await runner.start(chain(3, start="s0"))
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "COMPLETED"
    assert await history_records(handle) == ([patches.CURRENT], 1, ["COMPLETED"])


async def test_a_run_that_goes_on_past_its_first_segment_is_listed_running_while_it_calls_out(
    runner: Runner, stub: Stub
) -> None:
    """A pure node, then an HTTP call: RUNNING is upserted in the task that schedules the call, listed while it runs."""
    wf = definition(
        {
            "a": script("{% 1 %}", "call"),
            "call": state({"type": "HTTP", "request": {"url": stub.url("/json")}}, "done"),
            "done": success("{% $global.a %}"),
        },
        start="a",
    )
    _, handle = await runner.start(wf)
    assert (await run_result(handle)).workflow_status == "COMPLETED"
    assert await history_records(handle) == ([patches.CURRENT], 1, ["RUNNING", "activity", "COMPLETED"])
