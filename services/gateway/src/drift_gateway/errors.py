"""The gateway's errors, mapped to problem details in one place."""

from __future__ import annotations

from drift_runtime.web import Conflict, DriftProblem, Invalid, NotFound, Unavailable
from drift_schema.api import ProblemError
from drift_schema.codec import DecodeError
from drift_schema.statuses import RejectionCode

__all__ = ["Conflict", "Invalid", "NotFound", "Unavailable", "from_decode_error", "from_rejection"]


def from_decode_error(error: DecodeError) -> Invalid:
    return Invalid("the request body does not match its schema", errors=[error.as_problem_error()])


_BY_REJECTION: dict[RejectionCode, type[DriftProblem]] = {
    RejectionCode.NOT_FOUND: NotFound,
    RejectionCode.CONFLICT: Conflict,
    RejectionCode.INVALID: Invalid,
    RejectionCode.UNAVAILABLE: Unavailable,
}


def from_rejection(code: RejectionCode | None, message: str | None) -> DriftProblem:
    """The problem a `REJECTED` event of the caller's own command answers with."""
    problem_class = _BY_REJECTION.get(code or RejectionCode.INVALID, Invalid)
    if problem_class is Invalid:
        return Invalid(message, errors=[ProblemError(pointer="", message=message or "rejected")])
    return problem_class(message)
