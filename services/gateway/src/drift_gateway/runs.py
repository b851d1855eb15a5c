"""Listing a tenant's runs (contract 8.1): a Temporal visibility query over Drift's search attributes.

Why visibility: Temporal already indexes every execution; with the run's tenant, definition, version,
status and kind as Keyword attributes the list is one indexed query per page, whatever the number of
runs, and a run shows up as soon as visibility records its start or upsert (well within 5 s).

`currentNode` comes from the run's last state in Redis (one MGET per page), not from a search
attribute: upserting it on every node visit would add a history event per visit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from drift_gateway.errors import Invalid, Unavailable
from drift_schema import codec, redis_keys, search
from drift_schema.api import ProblemError
from drift_schema.run import public_id
from drift_schema.statuses import WorkflowStatus

log = structlog.get_logger("drift.gateway")

_TEMPORAL_ID = re.compile(r"^[A-Za-z0-9_~-]{1,300}$(?!\n)")
"""`<tenant>~<workflowId>`: nothing that could close a quoted query value."""

# Temporal's enum names (WORKFLOW_EXECUTION_STATUS_TIMED_OUT) in the spelling queries use (TimedOut).
_EXECUTION_STATUS = {
    value: "".join(part.capitalize() for part in name.removeprefix("WORKFLOW_EXECUTION_STATUS_").split("_"))
    for name, value in WorkflowExecutionStatus.items()
}
_EXECUTION_STATUS[WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT] = "TimedOut"
_EXECUTION_STATUS[WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW] = "ContinuedAsNew"


@dataclass(slots=True)
class _Sorting:
    supported: bool | None = None
    """Whether the visibility store sorts by StartTime; None until the first listing tells."""


_sorting = _Sorting()


@dataclass(frozen=True, slots=True)
class RunFilter:
    """The filters of one listing; together with the tenant they bind a page token."""

    statuses: tuple[WorkflowStatus, ...] = ()
    definition_id: str | None = None
    definition_version: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None

    def query(self, tenant: str) -> str:
        return search.list_query(
            tenant,
            self.statuses,
            self.definition_id,
            self.definition_version,
            self.started_after,
            self.started_before,
        )


class _PageToken(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    binding: str
    temporal: bytes


def _binding(tenant: str, query: str, page_size: int) -> str:
    """What a page token is valid for: this tenant, these filters and this page size."""
    return hashlib.sha256(f"{tenant}\n{query}\n{page_size}".encode()).hexdigest()[:32]


def encode_page_token(tenant: str, query: str, page_size: int, temporal_token: bytes) -> str:
    """An opaque token wrapping Temporal's, bound to the caller's tenant and query."""
    token = _PageToken(binding=_binding(tenant, query, page_size), temporal=temporal_token)
    return base64.urlsafe_b64encode(msgspec.msgpack.encode(token)).decode().rstrip("=")


def decode_page_token(tenant: str, query: str, page_size: int, text: str) -> bytes:
    """Temporal's token back; a token of another tenant, query or page size is refused (422)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        token = msgspec.msgpack.decode(raw, type=_PageToken)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        token = None
    if token is None or token.binding != _binding(tenant, query, page_size):
        raise Invalid(
            "pageToken is not a token of this listing",
            errors=[ProblemError(pointer="/pageToken", message="not a token of this listing")],
        )
    return token.temporal


def _iso(info: WorkflowExecutionInfo, closed: bool) -> str | None:
    if closed:
        if not info.HasField("close_time"):
            return None
        moment = info.close_time.ToDatetime()
    else:
        if not info.HasField("start_time"):
            return None
        moment = info.start_time.ToDatetime()
    return moment.isoformat(timespec="milliseconds") + "Z"


async def _current_nodes(redis: Redis, tenant: str, workflow_ids: list[str]) -> dict[str, str | None]:
    """Each run's current node from its last announced state; empty when Redis cannot answer."""
    if not workflow_ids:
        return {}
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for workflow_id in workflow_ids:
                pipe.hget(redis_keys.last_state(tenant, workflow_id), "body")
            bodies = await pipe.execute()
    except RedisError as error:
        log.warning("gateway.list_current_node_unavailable", error=str(error))
        return {}
    nodes: dict[str, str | None] = {}
    for workflow_id, body in zip(workflow_ids, bodies, strict=True):
        if body is None:
            continue
        try:
            nodes[workflow_id] = codec.decode_with(codec.workflow_event_decoder, body).current_node
        except codec.DecodeError:
            continue
    return nodes


def _keyword(info: WorkflowExecutionInfo, name: str) -> str | None:
    """One Keyword attribute of a listed execution (its payload is the JSON string)."""
    payload = info.search_attributes.indexed_fields.get(name)
    if payload is None:
        return None
    try:
        value = msgspec.json.decode(payload.data)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, str) else None


def _status_of(info: WorkflowExecutionInfo) -> WorkflowStatus:
    return search.summary_status(_keyword(info, search.STATUS), _EXECUTION_STATUS.get(info.status, "Running"))


_RETRIABLE = frozenset({WorkflowStatus.FAILED, WorkflowStatus.TERMINATED})
_RETRIED_STATUSES = frozenset(
    {
        WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED,
        WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED,
        WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED,
    }
)


async def _superseded(temporal: Client, executions: Sequence[WorkflowExecutionInfo]) -> set[str]:
    """Run ids of closed executions a later execution of the same workflowId replaced (a retry, 8.2).

    A retried run keeps its workflowId in a new execution; the closed one stays in visibility (and
    cannot be re-tagged once closed), so one more query per page finds the latest execution of each
    closed run on it, and the older ones are left out.
    """
    # Only a FAILED or TERMINATED run can be retried: a page of completed runs costs no second query.
    closed = sorted(
        {
            info.execution.workflow_id
            for info in executions
            if info.status in _RETRIED_STATUSES and _status_of(info) in _RETRIABLE
        }
    )
    if not closed:
        return set()
    ids = ", ".join(f"'{workflow_id}'" for workflow_id in closed if _TEMPORAL_ID.match(workflow_id))
    request = ListWorkflowExecutionsRequest(
        namespace=temporal.namespace,
        page_size=len(closed) * 4,
        query=f"WorkflowId IN ({ids}) AND ExecutionStatus != 'ContinuedAsNew'",
    )
    try:
        answer = await temporal.workflow_service.list_workflow_executions(request)
    except RPCError as error:
        log.warning("gateway.list_runs_latest_unknown", error=error.message)
        return set()
    latest: dict[str, tuple[datetime, str]] = {}
    for info in answer.executions:
        started = info.start_time.ToDatetime()
        known = latest.get(info.execution.workflow_id)
        if known is None or started > known[0]:
            latest[info.execution.workflow_id] = (started, info.execution.run_id)
    return {
        info.execution.run_id
        for info in executions
        if info.execution.workflow_id in latest and latest[info.execution.workflow_id][1] != info.execution.run_id
    }


async def list_runs(
    temporal: Client, redis: Redis, tenant: str, runs: RunFilter, page_size: int, page_token: str | None
) -> search.RunPage:
    """One page of the tenant's runs, newest first where the visibility store can sort (`search.NEWEST_FIRST`)."""
    query = runs.query(tenant) + (search.NEWEST_FIRST if _sorting.supported is not False else "")
    temporal_token = decode_page_token(tenant, query, page_size, page_token) if page_token else b""
    request = ListWorkflowExecutionsRequest(
        namespace=temporal.namespace, page_size=page_size, next_page_token=temporal_token, query=query
    )
    try:
        answer = await temporal.workflow_service.list_workflow_executions(request)
        _sorting.supported = _sorting.supported or query.endswith(search.NEWEST_FIRST)
    except RPCError as error:
        if error.status == RPCStatusCode.INVALID_ARGUMENT and _sorting.supported is None:
            # A SQL visibility store: list in its own order from now on (see search.NEWEST_FIRST).
            _sorting.supported = False
            log.info("gateway.list_runs_unsorted", reason=error.message)
            return await list_runs(temporal, redis, tenant, runs, page_size, page_token)
        log.warning("gateway.list_runs_failed", error=error.message)
        raise Unavailable("run listing is unavailable right now") from None
    summaries: list[search.RunSummary] = []
    seen: set[str] = set()
    superseded = await _superseded(temporal, answer.executions)
    for info in answer.executions:
        if info.execution.run_id in superseded:
            continue
        owner, workflow_id = public_id(info.execution.workflow_id)
        # The query already holds the tenant; a second check costs nothing and guards the boundary.
        if owner != tenant or workflow_id in seen:
            continue
        seen.add(workflow_id)
        summaries.append(
            search.RunSummary(
                workflow_id=workflow_id,
                workflow_status=_status_of(info),
                definition_id=_keyword(info, search.DEFINITION_ID),
                definition_version=_keyword(info, search.DEFINITION_VERSION) or None,
                started_at=_iso(info, closed=False),
                closed_at=_iso(info, closed=True),
            )
        )
    nodes = await _current_nodes(redis, tenant, [summary.workflow_id for summary in summaries])
    summaries = [msgspec.structs.replace(summary, current_node=nodes.get(summary.workflow_id)) for summary in summaries]
    next_token = encode_page_token(tenant, query, page_size, answer.next_page_token) if answer.next_page_token else None
    return search.RunPage(runs=summaries, next_page_token=next_token)
