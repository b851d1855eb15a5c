"""What a run remembers so that it can be retried from a node (contract 8.2).

A retry starts a new execution of the same Temporal workflow id whose `Carry` holds the node to
start from, `$global` as it was before that node ran, and the run's `seq`: nodes that completed
before it are not executed again, and the run's events continue its sequence. This module keeps,
inside the run, what that needs and answers the `retryPoint` query with it once the run has closed
(Temporal answers queries on closed runs by replaying them, so nothing is written anywhere).

Memory: one shallow copy of `$global` per main-path instance (the latest visit only), sharing the
output values themselves, so a loop of any length keeps one entry per instance. Only the run's
latest execution is remembered: across continue-as-new a node visited before it resumes with
`$global` as it was before the failed node.
"""

from __future__ import annotations

from typing import Any

from drift_schema.graph import branch_states
from drift_schema.statuses import WorkflowStatus
from drift_schema.testrun import RetryPoint
from drift_schema.workflow import WorkflowDefinition


class Checkpoints:
    """`$global` before each main-path visit, the first failed node, and each PARALLEL's completed branches."""

    def __init__(self, skip_branches: list[str] | None = None) -> None:
        self.before: dict[str, dict[str, Any]] = {}
        self.main_node: str | None = None
        self.failed_node: str | None = None
        self.completed: dict[str, list[str]] = {}
        self.skips = set(skip_branches or ())

    def visiting(self, instance: str, context: dict[str, Any]) -> None:
        """A main-path visit of `instance` begins (not on the failure path: those never become retry points)."""
        self.before[instance] = dict(context)
        self.main_node = instance
        self.completed[instance] = []

    def failed(self, instance: str) -> None:
        """A main-path node failed; the first failure is where a retry starts by default."""
        if self.failed_node is None:
            self.failed_node = instance

    def skip_branch(self, start: str) -> bool:
        """Whether the branch from `start` completed before the failure a retry started from (once)."""
        if start in self.skips:
            self.skips.discard(start)
            return True
        return False

    def branch_completed(self, start: str) -> None:
        """A branch (of the PARALLEL node the main path is at) walked to its end."""
        if self.main_node is not None:
            self.completed.setdefault(self.main_node, []).append(start)

    def point(
        self,
        from_node: str | None,
        definition: WorkflowDefinition,
        status: WorkflowStatus,
        context: dict[str, Any],
        seq: int,
        visits: int,
        callback_url: str | None,
    ) -> RetryPoint:
        """Where a retry starts and with which `$global` (see `RetryPoint`)."""
        default = self.failed_node or self.main_node or definition.start_node
        node = from_node or default
        skip: list[str] = []
        if node is not None and node in self.before:
            start_context = dict(self.before[node])
            skip = list(dict.fromkeys(self.completed.get(node, ())))
            # Completed branches keep their outputs: the run's $global still holds them.
            for branch in skip:
                for name in branch_states(definition, branch):
                    if name in context:
                        start_context[name] = context[name]
        elif default is not None and default in self.before:
            start_context = dict(self.before[default])
        else:
            start_context = dict(context)
        return RetryPoint(
            status=status,
            node=node,
            context=start_context,
            seq=seq,
            visits=visits,
            skip_branches=skip,
            callback_url=callback_url,
        )
