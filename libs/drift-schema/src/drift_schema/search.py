"""Temporal search attributes of Drift runs, and the visibility queries built on them (contract 8.1).

Every Drift run carries five Keyword attributes: set when the dispatcher starts it, and upserted by
the run itself on each Drift status change (never on node visits, which would add a history event
per visit). `GET /v3/workflows` is a Temporal visibility query over them, so listing scales with
Temporal's visibility store, not with a scan of runs.

`DriftKind` tells ordinary runs (`run`) from test runs (`test`, contract 8.3): the list only ever
shows `run`. A test run must be started with `DriftKind=test`; the run keeps the kind it was started
with in every later upsert.

Temporal reports `Running` for every Drift status that is not final, so the status filter is on
`DriftStatus`; a terminated run cannot upsert, so `TERMINATED` (and a run Temporal failed or timed
out) come from Temporal's own `ExecutionStatus`.

This module has no Temporal import: `drift_runtime.search_attributes` turns it into typed keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from drift_schema.base import Message
from drift_schema.statuses import WorkflowStatus

TENANT = "DriftTenant"
DEFINITION_ID = "DriftDefinitionId"
DEFINITION_VERSION = "DriftDefinitionVersion"
STATUS = "DriftStatus"
KIND = "DriftKind"

ATTRIBUTES: tuple[str, ...] = (TENANT, DEFINITION_ID, DEFINITION_VERSION, STATUS, KIND)
"""Every Drift search attribute; all are of Temporal's `Keyword` type."""

KIND_RUN = "run"
"""An ordinary run: listed by `GET /v3/workflows`."""
KIND_TEST = "test"
"""A test run (contract 8.3): never listed."""

STATUS_PATCH = "drift-search-attributes"
"""The `workflow.patched` id guarding the status upsert, so histories recorded before it still replay."""

# Temporal's ExecutionStatus names, as visibility queries spell them.
_RUNNING = "Running"
_COMPLETED = "Completed"
_FINAL_BY_TEMPORAL = {
    "Terminated": WorkflowStatus.TERMINATED,
    "Canceled": WorkflowStatus.TERMINATED,
    "Failed": WorkflowStatus.FAILED,
    "TimedOut": WorkflowStatus.FAILED,
}

LISTABLE_STATUSES = tuple(status for status in WorkflowStatus if status != WorkflowStatus.REJECTED)
"""Statuses a run can be listed under (`REJECTED` is only ever an event)."""

# Values that reach a query are validated here as well as by the caller: nothing can close a quote.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.~-]{1,128}$(?!\n)")


def _literal(value: str) -> str:
    if not _SAFE_VALUE.match(value):
        raise ValueError(f"not a safe search value: {value!r}")
    return f"'{value}'"


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a time filter needs a time zone")
    return "'" + moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z") + "'"


def _status_clause(status: WorkflowStatus) -> str:
    if status == WorkflowStatus.TERMINATED:
        return "ExecutionStatus IN ('Terminated', 'Canceled')"
    if status == WorkflowStatus.FAILED:
        return (
            f"(({STATUS} = 'FAILED' AND ExecutionStatus IN ('{_RUNNING}', '{_COMPLETED}'))"
            " OR ExecutionStatus IN ('Failed', 'TimedOut'))"
        )
    if status == WorkflowStatus.COMPLETED:
        return f"({STATUS} = 'COMPLETED' AND ExecutionStatus IN ('{_RUNNING}', '{_COMPLETED}'))"
    if status == WorkflowStatus.REJECTED:
        raise ValueError("REJECTED is not a run status")
    return f"({STATUS} = {_literal(status.value)} AND ExecutionStatus = '{_RUNNING}')"


def list_query(
    tenant: str,
    statuses: Iterable[WorkflowStatus] = (),
    definition_id: str | None = None,
    definition_version: str | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
) -> str:
    """The visibility query of one tenant's ordinary runs matching the filters (statuses are OR-ed).

    Executions that continued as new are left out: the run lives on in its latest execution.
    """
    clauses = [
        f"{TENANT} = {_literal(tenant)}",
        f"{KIND} = '{KIND_RUN}'",
        "ExecutionStatus != 'ContinuedAsNew'",
    ]
    wanted = sorted(set(statuses))
    if wanted:
        clauses.append("(" + " OR ".join(_status_clause(status) for status in wanted) + ")")
    if definition_id is not None:
        clauses.append(f"{DEFINITION_ID} = {_literal(definition_id)}")
    if definition_version is not None:
        clauses.append(f"{DEFINITION_VERSION} = {_literal(definition_version)}")
    if started_after is not None:
        clauses.append(f"StartTime >= {_time(started_after)}")
    if started_before is not None:
        clauses.append(f"StartTime < {_time(started_before)}")
    return " AND ".join(clauses)


NEWEST_FIRST = " ORDER BY StartTime DESC"
"""Appended where the visibility store can sort (Elasticsearch, OpenSearch); SQL stores refuse ORDER BY
and list open runs first (newest started first), then closed runs (most recently closed first)."""


def summary_status(drift_status: str | None, execution_status: str) -> WorkflowStatus:
    """A listed run's Drift status from its `DriftStatus` and Temporal's execution status name.

    `execution_status` is Temporal's name in title case (`Running`, `Terminated`, ...).
    """
    final = _FINAL_BY_TEMPORAL.get(execution_status)
    if final is not None:
        return final
    if drift_status is not None and drift_status in WorkflowStatus.__members__:
        return WorkflowStatus(drift_status)
    return WorkflowStatus.COMPLETED if execution_status == _COMPLETED else WorkflowStatus.RUNNING


def run_values(
    tenant: str, definition_id: str, definition_version: str, status: WorkflowStatus, kind: str = KIND_RUN
) -> dict[str, str]:
    """The attribute values of a run, by attribute name."""
    return {
        TENANT: tenant,
        DEFINITION_ID: definition_id,
        DEFINITION_VERSION: definition_version,
        STATUS: status.value,
        KIND: kind,
    }


# ------------------------------------------------------------------- the list's shapes (contract 8.1)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class RunSummary(Message, frozen=True):
    """One run in `GET /v3/workflows`."""

    workflow_id: str
    workflow_status: WorkflowStatus
    definition_id: str | None = None
    definition_version: str | None = None
    current_node: str | None = None
    started_at: str | None = None
    closed_at: str | None = None


class RunPage(Message, frozen=True):
    """One page of `GET /v3/workflows`, newest first; `nextPageToken` is null on the last page."""

    runs: list[RunSummary]
    next_page_token: str | None = None
