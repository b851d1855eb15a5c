"""A run started now records one patch marker for every patch of the interpreter, not one per patch."""

from __future__ import annotations

import json
from typing import Any

from temporalio.api.enums.v1 import EventType

from drift_runtime.temporal import run_result
from drift_worker import patches
from worker.test_segments import chain
from worker.worker_support import Runner

CHANGE_VERSION = "TemporalChangeVersion"


async def patch_records(handle: Any) -> tuple[list[str], int]:
    """The ids of the patch markers in a run's history, in order, and how many upserts set the change version."""
    history = await handle.fetch_history()
    markers, versions = [], 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_patch":
                markers.append(json.loads(next(iter(marker.details.values())).payloads[0].data)["id"])
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            versions += CHANGE_VERSION in fields
    return markers, versions


async def test_a_new_run_records_the_current_marker_alone(runner: Runner) -> None:
    """A chain that upserts its status, runs in segments and ends in one records one marker and one version upsert."""
    _, handle = await runner.start(chain(3, start="s0"))
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "COMPLETED"
    assert await patch_records(handle) == ([patches.CURRENT], 1)
