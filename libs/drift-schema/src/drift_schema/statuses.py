"""Run statuses (contract section 5)."""

from __future__ import annotations

import enum


class WorkflowStatus(enum.StrEnum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    SCHEDULER_WAITING = "SCHEDULER_WAITING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"
    REJECTED = "REJECTED"

    @property
    def is_stable(self) -> bool:
        """A stable state is one a sync caller is answered at."""
        return self in STABLE_STATUSES

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


STABLE_STATUSES = frozenset(
    {
        WorkflowStatus.WAITING,
        WorkflowStatus.SCHEDULER_WAITING,
        WorkflowStatus.COMPLETED,
        WorkflowStatus.FAILED,
        WorkflowStatus.TERMINATED,
    }
)
FINAL_STATUSES = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TERMINATED})


class RejectionCode(enum.StrEnum):
    """Why a command was rejected; the gateway maps each to an HTTP status."""

    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    INVALID = "INVALID"
    UNAVAILABLE = "UNAVAILABLE"
    LIMITED = "LIMITED"
    """The tenant is over a limit (concurrent runs): the gateway answers 429 with Retry-After."""
