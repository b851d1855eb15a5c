"""The interpreter's Temporal patches, and the one marker that stands for all of them in runs started now.

Each change to what the interpreter asks of Temporal is patched in (`workflow.patched`), so that
histories recorded before it replay as they ran. A patch checked in a new run records a marker and
an upsert of `TemporalChangeVersion`: two history events, and work for the worker and the server
in the run's first workflow task. A short run checks three of them (the status upsert, segments,
segments that end the run) before it does anything else: six events of a pure run's fourteen.

So a run records one marker, `CURRENT`, at its first check, and that marker stands for every patch
in `COVERED`: each was in the code when `CURRENT` was introduced. A history recorded before it has
no such marker where its first check was made: there `workflow.patched(CURRENT)` answers False
(Temporal records nothing while replaying), and each check asks Temporal for its own marker, as
before. A patch added later is not covered: it is asked for by name, after `CURRENT`.
"""

from __future__ import annotations

from temporalio import workflow

from drift_schema.search import STATUS_PATCH

CURRENT = "drift-2026-12"
"""Recorded once by every execution started from this version on: every patch in COVERED applies.

It also stands for one change of its own: a run whose first node is pure upserts RUNNING after its first
segment, not before it (see `GenericWorkflow._set_status`).
"""

CANCELLED_RUN = "cancelled-run-announced"
"""A run cancelled by its parent announces TERMINATED before it ends as cancelled."""
SEGMENTS = "pure-segments"
"""Runs of pure nodes on the main path evaluate in one local activity each (drift_worker.segments)."""
SEGMENT_ENDS = "segment-ends-run"
"""A segment whose last visit ends the run publishes the run's final status event itself."""
FAILED_RUN = "failed-run-fails-workflow"
"""A run that ends FAILED fails its Temporal workflow too."""
INSTRUCTION_TIMEOUT = "instruction-timeout"
"""An INSTRUCTION's timeoutMs bounds the wait for a person."""
WAIT_TIMEOUT = "wait-timeout"
"""A WAIT's timeoutMs shorter than the wait fails the node once it passes."""
CHILD_TIMEOUT = "child-timeout"
"""A SYNC CHILD's timeoutMs cancels the child and fails the node once it passes."""
TENANT_RUNS = "tenant-running-runs-bound"
"""CHILD runs count towards the tenant's running-runs limit."""

COVERED = frozenset(
    {
        STATUS_PATCH,
        CANCELLED_RUN,
        SEGMENTS,
        SEGMENT_ENDS,
        FAILED_RUN,
        INSTRUCTION_TIMEOUT,
        WAIT_TIMEOUT,
        CHILD_TIMEOUT,
        TENANT_RUNS,
    }
)
"""The patches `CURRENT` stands for: every one the interpreter had when it was introduced."""


class Patches:
    """One execution's answers to `workflow.patched` (one instance per run, made in the workflow)."""

    def __init__(self) -> None:
        self._current: bool | None = None

    def current(self) -> bool:
        """Whether this execution records `CURRENT` (it started on this version or later).

        Asked at the execution's first check, which is at the same point of its code in every replay.
        """
        if self._current is None:
            self._current = workflow.patched(CURRENT)
        return self._current

    def __call__(self, name: str) -> bool:
        """Whether this execution runs the code patched in as `name` (see the module's docstring)."""
        if name not in COVERED:
            return workflow.patched(name)
        return self.current() or workflow.patched(name)
