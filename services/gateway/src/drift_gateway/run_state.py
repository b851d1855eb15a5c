"""A run's state for `GET /v3/workflow/{workflowId}`: which of three sources answers, and when.

The policy lives in `RunStates`, over three narrow sources it is handed, so it can be tested
with plain objects standing in for them; the adapters at the bottom bind the sources to Temporal,
Redis and the dsl-store's run-context store.

1. Temporal (the run itself: `describe` and the `state` query) answers while it knows the run.
2. Past Temporal's retention, the run-context store holds the run's last stable state with its
   context; Redis's last state (no context) covers a state whose store write is still in flight.
3. When Temporal cannot answer at all, Redis's last state, else the run-context store's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from drift_client import DriftError
from drift_gateway.errors import NotFound, Unavailable
from drift_gateway.waiters import last_state, response_of
from drift_schema import search
from drift_schema.api import WorkflowDetail
from drift_schema.context import RunContext
from drift_schema.events import WorkflowEvent
from drift_schema.run import STATE_QUERY, RunSnapshot, temporal_id
from drift_schema.statuses import WorkflowStatus

log = structlog.get_logger("drift.gateway")

QUERY_TIMEOUT = timedelta(seconds=5)
UNAVAILABLE = "run state is unavailable right now"
_ENDED_IN_TEMPORAL = {
    WorkflowExecutionStatus.CANCELED: "the run was canceled in Temporal",
    WorkflowExecutionStatus.TIMED_OUT: "the run timed out in Temporal",
    WorkflowExecutionStatus.FAILED: "the run failed in Temporal",
}
"""Temporal closes that a run cannot report itself: its last status is not final, and FAILED is the truth."""


class RunUnknown(Exception):
    """The source does not know the run (Temporal: past its retention, or never started)."""


class SourceDown(Exception):
    """The source could not answer now; the run may well exist."""


@dataclass(frozen=True, slots=True)
class LiveRun:
    """What Temporal says of a run it knows: its execution status, its own state and its definition."""

    status: WorkflowExecutionStatus | None
    snapshot: RunSnapshot
    definition_id: str | None = None
    definition_version: str | None = None


class LiveRuns(Protocol):
    """Runs Temporal knows."""

    async def live(self, tenant: str, workflow_id: str) -> LiveRun:
        """The run as Temporal has it; RunUnknown when it has none, SourceDown when it cannot answer."""
        ...


class AnnouncedStates(Protocol):
    """Each run's last announced state (no context), kept for a while after it was announced."""

    async def announced(self, tenant: str, workflow_id: str) -> WorkflowEvent | None:
        """The run's last announced state; None when none is kept; SourceDown when it cannot answer."""
        ...


class KeptStates(Protocol):
    """The run-context store: each run's last stable state with its context, for good."""

    async def run_context(self, workflow_id: str, *, tenant: str | None = None) -> RunContext | None:
        """The run's kept state; None when none is kept; DriftError when the store cannot answer."""
        ...


def closed_in_temporal(status: WorkflowExecutionStatus | None, snapshot: RunSnapshot) -> WorkflowDetail | None:
    """The run as FAILED when Temporal closed it (timed out, failed, canceled) before it could say so itself.

    A WAITING or RUNNING answer would promise a resume that can no longer happen; None when the
    run's own status stands (it is final, or Temporal has not closed the run that way).
    """
    ended = _ENDED_IN_TEMPORAL.get(status) if status is not None else None
    if ended is None or snapshot.workflow_status.is_final:
        return None
    return WorkflowDetail(
        workflow_id=snapshot.workflow_id,
        workflow_status=WorkflowStatus.FAILED,
        current_node=snapshot.current_node,
        error_message=snapshot.error_message or ended,
        context=snapshot.context,
    )


def _detail(state: RunSnapshot | RunContext | WorkflowEvent, **extra: Any) -> WorkflowDetail:
    """A run's answer from any of its states: the fields they share, and `extra` (context, definition)."""
    return WorkflowDetail(**msgspec.structs.asdict(response_of(state)), **extra)


def _detail_of_live(run: LiveRun) -> WorkflowDetail:
    definition = {"definition_id": run.definition_id, "definition_version": run.definition_version}
    closed = closed_in_temporal(run.status, run.snapshot)
    if closed is not None:
        return msgspec.structs.replace(closed, **definition)
    detail = _detail(run.snapshot, context=run.snapshot.context, **definition)
    if run.status == WorkflowExecutionStatus.TERMINATED:
        # A terminated run never saw its own end: Temporal's word is final.
        return msgspec.structs.replace(detail, workflow_status=WorkflowStatus.TERMINATED)
    return detail


class RunStates:
    """The policy of `GET /v3/workflow/{workflowId}` over its three sources (see the module's docstring)."""

    def __init__(self, live: LiveRuns, announced: AnnouncedStates, kept: KeptStates | None) -> None:
        self.live = live
        self.announced = announced
        self.kept = kept
        """None when the gateway has no service token: no run-context store to ask."""

    async def get(self, tenant: str, workflow_id: str) -> WorkflowDetail:
        """The run's state; NotFound when no source knows it, Unavailable when none that might can answer."""
        try:
            return _detail_of_live(await self.live.live(tenant, workflow_id))
        except RunUnknown:
            return await self._forgotten(tenant, workflow_id)
        except SourceDown:
            return await self._without_temporal(tenant, workflow_id)

    async def _forgotten(self, tenant: str, workflow_id: str) -> WorkflowDetail:
        kept = await self._kept(tenant, workflow_id)
        if kept is not None:
            return _detail(kept, context=kept.context)
        try:
            announced = await self.announced.announced(tenant, workflow_id)
        except SourceDown:
            raise Unavailable(UNAVAILABLE) from None
        if announced is None:
            raise NotFound(f"workflow '{workflow_id}' not found") from None
        return _detail(announced)

    async def _without_temporal(self, tenant: str, workflow_id: str) -> WorkflowDetail:
        try:
            announced = await self.announced.announced(tenant, workflow_id)
        except SourceDown:
            announced = None  # Temporal and Redis both down: the run-context store may still know
        if announced is not None:
            return _detail(announced)
        kept = await self._kept(tenant, workflow_id)
        if kept is None:
            raise Unavailable(UNAVAILABLE) from None
        return _detail(kept, context=kept.context)

    async def _kept(self, tenant: str, workflow_id: str) -> RunContext | None:
        """The run-context store's state for this tenant's run; a store that cannot answer is Unavailable.

        Not NotFound: the run may well exist, and a retry may find it. The tenant travels in
        `X-Drift-Tenant`, so another tenant's run is never found.
        """
        if self.kept is None:
            return None
        try:
            return await self.kept.run_context(workflow_id, tenant=tenant)
        except DriftError as error:
            log.warning("gateway.run_store_unavailable", status=error.status, error=str(error))
            raise Unavailable(UNAVAILABLE) from None


# ----------------------------------------------------------------------------- adapters

_DEFINITION_ID = SearchAttributeKey.for_keyword(search.DEFINITION_ID)
_DEFINITION_VERSION = SearchAttributeKey.for_keyword(search.DEFINITION_VERSION)


class TemporalRuns:
    """LiveRuns from Temporal: `describe` (status, search attributes) and the run's `state` query."""

    def __init__(self, temporal: TemporalClient) -> None:
        self.temporal = temporal

    async def live(self, tenant: str, workflow_id: str) -> LiveRun:
        handle = self.temporal.get_workflow_handle(temporal_id(tenant, workflow_id))
        try:
            description = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
            snapshot = await handle.query(STATE_QUERY, result_type=RunSnapshot, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise RunUnknown(workflow_id) from None
            raise SourceDown(str(error)) from None
        attributes = description.typed_search_attributes
        return LiveRun(
            status=description.status,
            snapshot=snapshot,
            definition_id=attributes.get(_DEFINITION_ID),
            definition_version=attributes.get(_DEFINITION_VERSION) or None,
        )


async def known_to_temporal(
    temporal: TemporalClient, tenant: str, workflow_id: str, rpc_timeout: timedelta
) -> bool | None:
    """Whether Temporal knows the run (`describe`); None when it cannot say (unavailable, or no answer in time)."""
    try:
        await temporal.get_workflow_handle(temporal_id(tenant, workflow_id)).describe(rpc_timeout=rpc_timeout)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        log.info("gateway.existence_unknown", error=str(error))
        return None
    except TimeoutError:
        log.info("gateway.existence_unknown", error="timeout")
        return None
    return True


class RedisStates:
    """AnnouncedStates from Redis: the last state the notifier stored for each run."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def announced(self, tenant: str, workflow_id: str) -> WorkflowEvent | None:
        try:
            return await last_state(self.redis, tenant, workflow_id)
        except RedisError as error:
            raise SourceDown(str(error)) from None
