"""The gateway's errors, mapped to problem details in one place."""

from __future__ import annotations

from drift_runtime.web import DriftProblem
from drift_schema.api import ProblemError
from drift_schema.codec import DecodeError
from drift_schema.statuses import RejectionCode


class NotFound(DriftProblem):
    status = 404
    title = "Not Found"


class Conflict(DriftProblem):
    status = 409
    title = "Conflict"


class Invalid(DriftProblem):
    status = 422
    title = "Unprocessable Content"

    @classmethod
    def from_decode_error(cls, error: DecodeError) -> Invalid:
        return cls("the request body does not match its schema", errors=[error.as_problem_error()])


class Unavailable(DriftProblem):
    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str, retry_after_s: int = 2) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


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
    if problem_class is Unavailable:
        return Unavailable(message or "unavailable")
    return problem_class(message)
