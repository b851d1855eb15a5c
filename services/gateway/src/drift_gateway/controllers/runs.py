"""`GET /v3/workflows` (contract 8.1): the caller's runs, filtered and paged, newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from drift_gateway.errors import Invalid
from drift_gateway.runs import RunFilter, list_runs
from drift_gateway.runtime import Runtime
from drift_runtime.web import problem_responses, tenant_of
from drift_schema.api import ProblemError
from drift_schema.search import DEFAULT_PAGE_SIZE, LISTABLE_STATUSES, MAX_PAGE_SIZE, RunPage
from drift_schema.statuses import WorkflowStatus

_DEFINITION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$(?!\n)")
_VERSION = re.compile(r"^[A-Za-z0-9_.-]{1,32}$(?!\n)")
_STATUS_NAMES = ", ".join(status.value for status in LISTABLE_STATUSES)


def _invalid(pointer: str, message: str) -> Invalid:
    return Invalid(message, errors=[ProblemError(pointer=pointer, message=message)])


def _statuses(values: list[str] | None) -> tuple[WorkflowStatus, ...]:
    chosen: list[WorkflowStatus] = []
    for index, value in enumerate(values or []):
        # Comma-separated values are accepted too: `?status=FAILED,TERMINATED`.
        for part in value.split(","):
            name = part.strip()
            if name not in WorkflowStatus.__members__ or name == WorkflowStatus.REJECTED:
                raise _invalid(f"/status/{index}", f"unknown status '{name}'; one of {_STATUS_NAMES}")
            chosen.append(WorkflowStatus(name))
    return tuple(chosen)


def _moment(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _invalid(f"/{name}", f"{name} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise _invalid(f"/{name}", f"{name} needs a time zone (e.g. Z)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. year 1 at +05:00: before the first representable instant
        raise _invalid(f"/{name}", f"{name} is out of range") from None


def _page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _invalid("/pageSize", f"pageSize must be an integer from 1 to {MAX_PAGE_SIZE}")
    return size


def _matching(pattern: re.Pattern[str], name: str, value: str | None) -> str | None:
    if value is not None and not pattern.match(value):
        raise _invalid(f"/{name}", f"{name} is not a valid {name}")
    return value


class RunsController(Controller):
    path = "/v3/workflows"
    tags = ["runtime"]

    # A query with a bad value is refused with 422 and a pointer to the parameter.
    @get("/", summary="List the tenant's runs, filtered and paged, newest first", responses=problem_responses(400, 422))
    async def list_runs(
        self,
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        status: Annotated[
            list[str] | None, QueryParameter(name="status", description=f"repeatable; any of {_STATUS_NAMES}")
        ] = None,
        definition_id: Annotated[str | None, QueryParameter(name="definitionId")] = None,
        definition_version: Annotated[
            str | None, QueryParameter(name="definitionVersion", description="the pinned version, e.g. 3")
        ] = None,
        started_after: Annotated[
            str | None, QueryParameter(name="startedAfter", description="RFC 3339, inclusive")
        ] = None,
        started_before: Annotated[
            str | None, QueryParameter(name="startedBefore", description="RFC 3339, exclusive")
        ] = None,
        page_size: Annotated[
            str | None,
            QueryParameter(name="pageSize", description=f"1 to {MAX_PAGE_SIZE}, default {DEFAULT_PAGE_SIZE}"),
        ] = None,
        page_token: Annotated[
            str | None, QueryParameter(name="pageToken", description="nextPageToken of the previous page")
        ] = None,
    ) -> RunPage:
        tenant = tenant_of(request)
        runs = RunFilter(
            statuses=_statuses(status),
            definition_id=_matching(_DEFINITION_ID, "definitionId", definition_id),
            definition_version=_matching(_VERSION, "definitionVersion", definition_version),
            started_after=_moment("startedAfter", started_after),
            started_before=_moment("startedBefore", started_before),
        )
        return await list_runs(runtime.temporal, runtime.redis, tenant, runs, _page_size(page_size), page_token or None)
