"""Errors of Drift's HTTP APIs as typed exceptions: every non-2xx answer's problem details (RFC 9457).

`DriftError` is the base (it carries the `Problem` and its status); the subclasses name what a
caller usually decides on, so code says `except NotFoundError` rather than comparing statuses.
A store or gateway that cannot be reached at all raises `UnreachableError`, an `UnavailableError`
with status 503: to a caller both mean "retry later".
"""

from __future__ import annotations

import httpx
import msgspec

from drift_schema.api import Problem

__all__ = [
    "ConflictError",
    "DriftError",
    "InvalidError",
    "NotAuthorizedError",
    "NotFoundError",
    "UnavailableError",
    "UnreachableError",
    "error_for",
    "raise_for_problem",
]


class DriftError(Exception):
    """An answer outside 2xx; `problem` holds the problem details (RFC 9457)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.status} {problem.title}: {problem.detail or ''}".strip())
        self.problem = problem
        self.status = problem.status


class InvalidError(DriftError):
    """400 or 422: the request itself is wrong; `problem.errors` has a JSON pointer per fault."""


class NotAuthorizedError(DriftError):
    """401 or 403: the key or token (or the tenant it claims) is not accepted."""


class NotFoundError(DriftError):
    """404: no such resource for this tenant."""


class ConflictError(DriftError):
    """409: the resource's state forbids the request (it exists, or something refers to it)."""


class UnavailableError(DriftError):
    """408, 429 or 5xx: the server cannot answer now; the same request may succeed later."""


class UnreachableError(UnavailableError):
    """No answer at all (connection refused, timed out, reset); `__cause__` is the transport error."""

    def __init__(self, url: str, error: httpx.TransportError) -> None:
        reason = str(error) or type(error).__name__
        super().__init__(Problem(title="Service Unavailable", status=503, detail=f"{url} is unreachable: {reason}"))
        self.url = url


_BY_STATUS: dict[int, type[DriftError]] = {
    400: InvalidError,
    401: NotAuthorizedError,
    403: NotAuthorizedError,
    404: NotFoundError,
    408: UnavailableError,
    409: ConflictError,
    422: InvalidError,
    429: UnavailableError,
}


def error_for(problem: Problem) -> DriftError:
    """The typed exception for a problem, by its status."""
    kind = _BY_STATUS.get(problem.status) or (UnavailableError if problem.status >= 500 else DriftError)
    return kind(problem)


def raise_for_problem(response: httpx.Response) -> None:
    """Raise the typed DriftError for an answer outside 2xx, with its problem details (or ones built from it)."""
    if response.is_success:
        return
    try:
        problem = msgspec.json.decode(response.content, type=Problem)
    except msgspec.DecodeError:
        problem = Problem(title=response.reason_phrase, status=response.status_code, detail=response.text)
    raise error_for(problem)
