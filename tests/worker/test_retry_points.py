"""Where a retry starts and with which $global (drift_worker.retry.Checkpoints), without a server."""

from __future__ import annotations

from typing import Any

from drift_schema import codec
from drift_schema.statuses import WorkflowStatus
from drift_schema.workflow import WorkflowDefinition
from drift_worker.retry import Checkpoints


def _definition() -> WorkflowDefinition:
    def script(next_node: str | None = None) -> dict[str, Any]:
        state: dict[str, Any] = {"nodeDefinition": {"id": "s", "type": "SCRIPT", "output": "x"}}
        return state | ({"nextNode": next_node} if next_node else {})

    return codec.convert(
        {
            "id": "w",
            "startNode": "a",
            "states": {
                "a": script("p"),
                "p": {
                    "nodeDefinition": {"id": "p", "type": "PARALLEL", "branches": ["l1", "r1"]},
                    "nextNode": "z",
                },
                "l1": script("l2"),
                "l2": script(),
                "r1": script(),
                "z": script(),
            },
        },
        WorkflowDefinition,
    )


def _point(checkpoints: Checkpoints, context: dict[str, Any], from_node: str | None = None) -> Any:
    return checkpoints.point(from_node, _definition(), WorkflowStatus.FAILED, context, 7, 9, None)


def test_the_first_failed_node_and_global_before_its_latest_visit() -> None:
    """The default is the first main-path failure; $global is as before that node's latest visit."""
    checkpoints = Checkpoints()
    checkpoints.visiting("a", {"params": 1})
    checkpoints.visiting("a", {"params": 1, "a": "first"})
    checkpoints.visiting("z", {"params": 1, "a": "second"})
    checkpoints.failed("z")
    checkpoints.failed("report")  # a later failure (on the failure path) does not move the retry point
    point = _point(checkpoints, {"params": 1, "a": "second", "lastError": {}, "report": "r"})
    assert (point.node, point.context, point.seq, point.visits) == ("z", {"params": 1, "a": "second"}, 7, 9)
    assert _point(checkpoints, {}, "a").context == {"params": 1, "a": "first"}
    # Not visited in this execution: $global as before the failed node.
    assert _point(checkpoints, {}, "l1").context == {"params": 1, "a": "second"}


def test_a_terminated_run_resumes_at_its_main_path_node() -> None:
    """Without a failure the retry point is the main-path node the run was at, not a branch node."""
    checkpoints = Checkpoints()
    checkpoints.visiting("a", {})
    checkpoints.visiting("p", {"a": 1})
    point = _point(checkpoints, {"a": 1, "l1": 2})
    assert point.node == "p" and point.context == {"a": 1}


def test_completed_parallel_branches_are_skipped_with_their_outputs() -> None:
    """A retried PARALLEL node skips the branches that completed and keeps their states' outputs."""
    checkpoints = Checkpoints()
    checkpoints.visiting("p", {"a": 1})
    checkpoints.branch_completed("l1")
    checkpoints.failed("p")
    point = _point(checkpoints, {"a": 1, "l1": "L1", "l2": "L2", "r1": "partial", "lastError": {}})
    assert point.skip_branches == ["l1"]
    assert point.context == {"a": 1, "l1": "L1", "l2": "L2"}
    retried = Checkpoints(point.skip_branches)
    assert retried.skip_branch("l1") and not retried.skip_branch("l1") and not retried.skip_branch("r1")
