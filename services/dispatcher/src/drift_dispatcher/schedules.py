"""The dispatcher's schedule worker: runs the `ScheduledRun` workflows of every Drift schedule.

It lives in the dispatcher because a firing is a start command: its start activity calls the very
`CommandDispatcher.start` that `drift.<tenant>.cmd.start` uses (pinning, `ACTIVE` resolved now,
duplicate guard, search attributes), so a scheduled run is like any other.
"""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from drift_dispatcher.commands import CommandDispatcher, Rejected
from drift_dispatcher.schedule_workflow import REJECTED, ScheduledRunWorkflow
from drift_schema.commands import StartCommand, ThreadContext
from drift_schema.run import temporal_id
from drift_schema.schedules import AWAIT_ACTIVITY, START_ACTIVITY, StartInput, schedule_task_queue

log = structlog.get_logger("drift.dispatcher")

HEARTBEAT_EVERY_S = 15.0
# Each in-flight scheduled run holds one waiting activity (a cheap coroutine), so allow many.
MAX_WAITING_RUNS = 5_000
PASSTHROUGH = ("drift_schema", "drift_runtime", "msgspec", "structlog")


class ScheduleActivities:
    def __init__(self, dispatcher: CommandDispatcher) -> None:
        self.dispatcher = dispatcher

    @activity.defn(name=START_ACTIVITY)
    async def start(self, job: StartInput) -> None:
        """Start the firing's run exactly as a start command would; a refusal fails the firing for good."""
        command = StartCommand(
            workflow=job.workflow,
            workflow_id=job.workflow_id,
            params=job.params,
            thread_context=ThreadContext(schedule_id=job.schedule_id),
        )
        structlog.contextvars.bind_contextvars(tenant=job.tenant, workflow_id=job.workflow_id)
        try:
            async with self.dispatcher.locks.hold(f"{job.tenant}/{job.workflow_id}"):
                await self.dispatcher.start(job.tenant, command, job.command_id)
        except Rejected as rejection:
            # Final, as for a start command: even over the tenant's running-run limit the firing is dropped
            # rather than retried, so a tenant's schedules cannot pile up firings that wait for room.
            # Outages are not rejections (TransientFault): those the activity retries until they pass.
            log.warning("schedule.firing_rejected", schedule_id=job.schedule_id, reason=rejection.message)
            raise ApplicationError(rejection.message, type=REJECTED, non_retryable=True) from None
        log.info("schedule.fired", schedule_id=job.schedule_id)

    @activity.defn(name=AWAIT_ACTIVITY)
    async def await_run(self, job: StartInput) -> None:
        """Return once the firing's run has closed, however it closed (heartbeating meanwhile)."""
        handle = self.dispatcher.client.get_workflow_handle(temporal_id(job.tenant, job.workflow_id))
        result = asyncio.ensure_future(handle.result(follow_runs=True))
        try:
            while not result.done():
                await asyncio.wait({result}, timeout=HEARTBEAT_EVERY_S)
                activity.heartbeat()
            result.result()
        except WorkflowFailureError:
            return  # failed or terminated: closed all the same
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return  # past retention: long closed
            raise
        finally:
            result.cancel()


def schedule_worker(client: Client, dispatcher: CommandDispatcher, task_queue: str) -> Worker:
    """A Temporal worker for the `ScheduledRun` workflow and its two activities."""
    activities = ScheduleActivities(dispatcher)
    return Worker(
        client,
        task_queue=schedule_task_queue(task_queue),
        workflows=[ScheduledRunWorkflow],
        activities=[activities.start, activities.await_run],
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
        max_concurrent_activities=MAX_WAITING_RUNS,
    )


async def run_schedule_worker(
    client: Client, dispatcher: CommandDispatcher, task_queue: str, stop: asyncio.Event
) -> None:
    """Run the schedule worker until `stop` is set; a failure is logged, never taking commands down."""
    try:
        async with schedule_worker(client, dispatcher, task_queue):
            log.info("schedule.worker_started", task_queue=schedule_task_queue(task_queue))
            await stop.wait()
    except Exception:
        log.exception("schedule.worker_failed")
