"""The dsl-store's problems: the runtime's problem classes, plus the answer to a database that does not answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from litestar import Request, Response
from sqlalchemy.exc import OperationalError

from drift_runtime.web import EXCEPTION_HANDLERS, Conflict, Invalid, NotFound, Unavailable, problem_response

__all__ = ["EXCEPTION_HANDLERS_DSL", "Conflict", "Invalid", "NotFound", "Unavailable"]

log = structlog.get_logger("drift.dsl_store")


def _store_unavailable(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    # Connection-level database faults pass; callers may retry, so say 503 rather than 500.
    log.warning("dsl.store_unavailable", path=request.url.path, error=str(error))
    problem = Unavailable("the definitions store is unavailable")
    return problem_response(problem.to_problem(), problem.headers)


EXCEPTION_HANDLERS_DSL: dict[Any, Callable[..., Response[Any]]] = {
    **EXCEPTION_HANDLERS,
    OperationalError: _store_unavailable,
}
