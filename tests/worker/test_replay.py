"""The determinism guard: recorded histories must replay on today's workflow code.

A failure here means a change would break runs already in flight. Either make the
change replay-safe (e.g. `workflow.patched`), or, if no run of the old shape can
exist anywhere, re-record with `uv run python tests/worker/record_histories.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from drift_runtime.temporal import DATA_CONVERTER
from drift_worker.app import sandbox_runner
from drift_worker.workflow import GenericWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


def test_histories_of_every_example_are_recorded() -> None:
    """The guard covers both example bundles, every node type, the failure paths and continue-as-new chains,
    with pure nodes one at a time (recorded before segments), in segments, and in segments that end the run;
    and runs recorded with one patch marker standing for every patch (drift_worker.patches)."""
    names = {path.stem for path in HISTORIES}
    recorded = {"hello_approval_approve", "return_request", "every_node", "failure_paths", "long_loop_first_run"}
    segmented = {"segments", "segmented_loop_first_run"}
    ending = {"segments_ending_runs", "segment_fails_run", "segment_walks_off_graph"}
    one_marker = {"one_marker_every_node", "one_marker_failure_paths", "one_marker_segments"}
    assert recorded | segmented | ending | one_marker <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    """Replaying a recorded run on the current GenericWorkflow raises no nondeterminism error."""
    replayer = Replayer(workflows=[GenericWorkflow], data_converter=DATA_CONVERTER, workflow_runner=sandbox_runner())
    await replayer.replay_workflow(load(path))
