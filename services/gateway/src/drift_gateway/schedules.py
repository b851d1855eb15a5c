"""Schedules (contract 9) on Temporal Schedules, tenant-scoped by id (`<tenant>~<scheduleId>`).

Each schedule's action is the dispatcher's `ScheduledRun` workflow (see `drift_schema.schedules`),
which starts the Drift run and lasts as long as it does, so the overlap policy governs Drift runs.
What the caller gave (definition, cron or interval, params) is kept in the schedule's memo: Temporal
rewrites a cron string into calendar specs and would not give it back as written.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from litestar.datastructures import State
from litestar.di import Provide
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.client import (
    Schedule as TemporalSchedule,
)
from temporalio.service import RPCError, RPCStatusCode

from drift_gateway.errors import Conflict, Invalid, NotFound, TooManyRequests, Unavailable
from drift_runtime.search_attributes import tenant_attributes
from drift_schema import search
from drift_schema.api import ProblemError
from drift_schema.schedules import (
    MAX_NEXT_RUN_TIMES,
    MAX_RECENT_RUNS,
    SCHEDULED_RUN_WORKFLOW,
    Overlap,
    RecentRun,
    Schedule,
    ScheduledStart,
    ScheduledWorkflow,
    ScheduleRequest,
    ScheduleSpecMemo,
    action_workflow_id,
    cron_problem,
    is_schedule_id,
    schedule_task_queue,
    scheduled_workflow_id,
    temporal_schedule_id,
    utc_text,
)

log = structlog.get_logger("drift.gateway")

MEMO_KEY = "drift"
DEFAULT_MAX_SCHEDULES = 100
LIST_CONCURRENCY = 16
RPC_TIMEOUT = timedelta(seconds=10)
_TO_TEMPORAL = {
    Overlap.SKIP: ScheduleOverlapPolicy.SKIP,
    Overlap.BUFFER_ONE: ScheduleOverlapPolicy.BUFFER_ONE,
    Overlap.ALLOW_ALL: ScheduleOverlapPolicy.ALLOW_ALL,
}
_FROM_TEMPORAL = {policy: overlap for overlap, policy in _TO_TEMPORAL.items()}


def _invalid(pointer: str, message: str) -> Invalid:
    return Invalid(message, errors=[ProblemError(pointer=pointer, message=message)])


def _spec(request: ScheduleRequest) -> ScheduleSpec:
    if (request.cron is None) == (request.interval_seconds is None):
        raise _invalid("/cron", "give exactly one of cron and intervalSeconds")
    if request.cron is not None:
        problem = cron_problem(request.cron)
        if problem is not None:
            raise _invalid("/cron", problem)
        # No time zone: Temporal reads cron in UTC, as the contract wants.
        return ScheduleSpec(cron_expressions=[request.cron.strip()])
    assert request.interval_seconds is not None
    return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=request.interval_seconds))])


class Schedules:
    """The schedule routes' service layer; every method takes the caller's tenant."""

    def __init__(self, client: Client, task_queue: str, max_schedules: int = DEFAULT_MAX_SCHEDULES) -> None:
        self.client = client
        self.task_queue = task_queue
        self.max_schedules = max_schedules

    def _handle(self, tenant: str, schedule_id: str) -> ScheduleHandle:
        if not is_schedule_id(schedule_id):
            raise NotFound(f"schedule '{schedule_id}' not found")
        return self.client.get_schedule_handle(temporal_schedule_id(tenant, schedule_id))

    async def create(self, tenant: str, request: ScheduleRequest) -> Schedule:
        spec = _spec(request)
        # Each schedule fires runs on its own: one tenant's thousands would crowd every other's firings.
        if len(await self._ids(tenant)) >= self.max_schedules:
            raise TooManyRequests(
                f"the tenant has {self.max_schedules} schedules, its limit: delete one first", retry_after_s=60
            )
        start = ScheduledStart(
            tenant=tenant, schedule_id=request.schedule_id, workflow=request.workflow, params=request.params
        )
        schedule = TemporalSchedule(
            action=ScheduleActionStartWorkflow(
                SCHEDULED_RUN_WORKFLOW,
                start,
                id=action_workflow_id(tenant, request.schedule_id),
                task_queue=schedule_task_queue(self.task_queue),
            ),
            spec=spec,
            policy=SchedulePolicy(overlap=_TO_TEMPORAL[request.overlap]),
            state=ScheduleState(paused=request.paused),
        )
        memo = ScheduleSpecMemo(
            workflow=request.workflow,
            cron=request.cron.strip() if request.cron else None,
            interval_seconds=request.interval_seconds,
            params=request.params,
        )
        try:
            await self.client.create_schedule(
                temporal_schedule_id(tenant, request.schedule_id),
                schedule,
                memo={MEMO_KEY: memo},
                search_attributes=tenant_attributes(tenant),
                rpc_timeout=RPC_TIMEOUT,
            )
        except ScheduleAlreadyRunningError:
            raise Conflict(f"schedule '{request.schedule_id}' already exists") from None
        except RPCError as error:
            if error.status == RPCStatusCode.INVALID_ARGUMENT:
                raise _invalid("/cron" if request.cron else "/intervalSeconds", error.message) from None
            raise _unavailable(error) from None
        log.info("gateway.schedule_created", schedule_id=request.schedule_id)
        return await self.get(tenant, request.schedule_id)

    async def get(self, tenant: str, schedule_id: str) -> Schedule:
        handle = self._handle(tenant, schedule_id)
        try:
            description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as error:
            raise _not_found_or_unavailable(error, schedule_id) from None
        schedule = await _schedule_of(schedule_id, description)
        if schedule is None:
            raise NotFound(f"schedule '{schedule_id}' not found")  # not one Drift made
        return schedule

    async def _ids(self, tenant: str) -> set[str]:
        """The tenant's schedule ids; found by their `DriftTenant` attribute, checked by id prefix."""
        prefix = temporal_schedule_id(tenant, "")
        ids: set[str] = set()
        try:
            listing = await self.client.list_schedules(f"{search.TENANT} = '{tenant}'", rpc_timeout=RPC_TIMEOUT)
            async for entry in listing:
                if entry.id.startswith(prefix):
                    ids.add(entry.id.removeprefix(prefix))
        except RPCError as error:
            raise _unavailable(error) from None
        return ids

    async def list(self, tenant: str) -> list[Schedule]:
        """The tenant's schedules, by id."""
        ids = sorted(await self._ids(tenant))
        # Described side by side, a few at a time: a listing of the tenant's limit stays quick.
        room = asyncio.Semaphore(LIST_CONCURRENCY)

        async def described(schedule_id: str) -> Schedule | None:
            async with room:
                try:
                    return await self.get(tenant, schedule_id)
                except NotFound:
                    return None  # deleted since it was listed

        found = await asyncio.gather(*(described(schedule_id) for schedule_id in ids))
        return [schedule for schedule in found if schedule is not None]

    async def pause(self, tenant: str, schedule_id: str, paused: bool) -> Schedule:
        handle = self._handle(tenant, schedule_id)
        try:
            if paused:
                await handle.pause(note="paused through the Drift API", rpc_timeout=RPC_TIMEOUT)
            else:
                await handle.unpause(note="unpaused through the Drift API", rpc_timeout=RPC_TIMEOUT)
        except RPCError as error:
            raise _not_found_or_unavailable(error, schedule_id) from None
        return await self.get(tenant, schedule_id)

    async def trigger(self, tenant: str, schedule_id: str) -> Schedule:
        """Start one run now, whatever the overlap policy says about runs still going."""
        handle = self._handle(tenant, schedule_id)
        try:
            await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL, rpc_timeout=RPC_TIMEOUT)
        except RPCError as error:
            raise _not_found_or_unavailable(error, schedule_id) from None
        log.info("gateway.schedule_triggered", schedule_id=schedule_id)
        return await self.get(tenant, schedule_id)

    async def delete(self, tenant: str, schedule_id: str) -> None:
        """Delete the schedule; runs it already started go on."""
        handle = self._handle(tenant, schedule_id)
        try:
            await handle.delete(rpc_timeout=RPC_TIMEOUT)
        except RPCError as error:
            raise _not_found_or_unavailable(error, schedule_id) from None
        log.info("gateway.schedule_deleted", schedule_id=schedule_id)


def _unavailable(error: RPCError) -> Unavailable:
    log.warning("gateway.schedule_rpc_failed", error=error.message)
    return Unavailable("schedules are unavailable right now")


def _not_found_or_unavailable(error: RPCError, schedule_id: str) -> Exception:
    if error.status == RPCStatusCode.NOT_FOUND:
        return NotFound(f"schedule '{schedule_id}' not found")
    return _unavailable(error)


async def _schedule_of(schedule_id: str, description: ScheduleDescription) -> Schedule | None:
    memo: ScheduleSpecMemo | None = await description.memo_value(MEMO_KEY, None, type_hint=ScheduleSpecMemo)
    if memo is None:
        return None
    info = description.info
    recent = sorted(info.recent_actions, key=lambda action: action.scheduled_at, reverse=True)
    return Schedule(
        schedule_id=schedule_id,
        workflow=ScheduledWorkflow(id=memo.workflow.id, version=memo.workflow.version),
        cron=memo.cron,
        interval_seconds=memo.interval_seconds,
        params=memo.params,
        paused=description.schedule.state.paused,
        overlap=_FROM_TEMPORAL.get(description.schedule.policy.overlap, Overlap.SKIP),
        next_run_times=[utc_text(moment) for moment in info.next_action_times[:MAX_NEXT_RUN_TIMES]],
        recent_runs=[
            RecentRun(
                workflow_id=scheduled_workflow_id(schedule_id, action.scheduled_at),
                started_at=utc_text(action.started_at),
            )
            for action in recent[:MAX_RECENT_RUNS]
        ],
    )


def schedules_dependency(task_queue: str, max_schedules: int = DEFAULT_MAX_SCHEDULES) -> Provide:
    """The `schedules` dependency of the schedule routes, over the lifespan's Temporal client."""

    def schedules(state: State) -> Schedules:
        return Schedules(state.runtime.temporal, task_queue, max_schedules)

    return Provide(schedules, sync_to_thread=False)
