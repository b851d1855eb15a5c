"""The dsl-store's problems: the one place where failures become RFC 9457 problem details."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from litestar import Request, Response
from sqlalchemy.exc import OperationalError

from drift_runtime.web import EXCEPTION_HANDLERS, DriftProblem, problem_response
from drift_schema.api import ProblemError

log = structlog.get_logger("drift.dsl_store")


class NotFound(DriftProblem):
    """A definition or version that does not exist for this tenant (another tenant's looks the same)."""

    status = 404
    title = "Not Found"


class Conflict(DriftProblem):
    """The id is taken, or concurrent writers kept winning."""

    status = 409
    title = "Conflict"


class Invalid(DriftProblem):
    """A definition that does not decode or does not validate; `errors` carry JSON pointers."""

    status = 422
    title = "Unprocessable Content"

    @classmethod
    def from_errors(cls, detail: str, errors: list[ProblemError]) -> Invalid:
        return cls(detail, errors)


class Unavailable(DriftProblem):
    """A dependency (the database) does not answer; worth a retry."""

    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


def _store_unavailable(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    # Connection-level database faults pass; callers may retry, so say 503 rather than 500.
    log.warning("dsl.store_unavailable", path=request.url.path, error=str(error))
    problem = Unavailable("the definitions store is unavailable")
    return problem_response(problem.to_problem(), problem.headers)


EXCEPTION_HANDLERS_DSL: dict[Any, Callable[..., Response[Any]]] = {
    **EXCEPTION_HANDLERS,
    OperationalError: _store_unavailable,
}
