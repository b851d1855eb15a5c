"""The gateway's errors, mapped to problem details in one place."""

from __future__ import annotations

from drift_runtime.web import Conflict, DriftProblem, Invalid, NotFound, TooManyRequests, Unavailable
from drift_schema.api import ProblemError
from drift_schema.codec import DecodeError
from drift_schema.statuses import RejectionCode

__all__ = [
    "Conflict",
    "Invalid",
    "NotFound",
    "TooManyRequests",
    "Unavailable",
    "from_decode_error",
    "from_rejection",
]
LIMITED_RETRY_AFTER_S = 1
"""`Retry-After` of a start the dispatcher refused for the tenant's concurrent-runs limit."""


def from_decode_error(error: DecodeError) -> Invalid:
    return Invalid("the request body does not match its schema", errors=[error.as_problem_error()])


_BY_REJECTION: dict[RejectionCode, type[DriftProblem]] = {
    RejectionCode.NOT_FOUND: NotFound,
    RejectionCode.CONFLICT: Conflict,
    RejectionCode.INVALID: Invalid,
    RejectionCode.UNAVAILABLE: Unavailable,
    RejectionCode.LIMITED: TooManyRequests,
}


def from_rejection(code: RejectionCode | None, message: str | None) -> DriftProblem:
    """The problem a `REJECTED` event of the caller's own command answers with."""
    problem_class = _BY_REJECTION.get(code or RejectionCode.INVALID, Invalid)
    if problem_class is Invalid:
        return Invalid(message, errors=[ProblemError(pointer="", message=message or "rejected")])
    if problem_class is TooManyRequests:
        return TooManyRequests(message, retry_after_s=LIMITED_RETRY_AFTER_S)
    return problem_class(message)
