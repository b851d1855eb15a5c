"""The action of every Drift schedule: start one Drift run, as a start command would, and wait for it.

Waiting makes the schedule's overlap policy (SKIP, BUFFER_ONE, ALLOW_ALL) apply to the Drift runs
themselves: Temporal sees this workflow running for exactly as long as the run it started.
Kept apart from the activities so the sandbox imports nothing but shapes.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from drift_runtime.search_attributes import SCHEDULED_START
    from drift_schema.schedules import (
        AWAIT_ACTIVITY,
        SCHEDULED_RUN_WORKFLOW,
        START_ACTIVITY,
        ScheduledStart,
        StartInput,
        scheduled_workflow_id,
    )

START_TIMEOUT = timedelta(minutes=1)
REJECTED = "REJECTED"
# Until the dependencies answer: a firing waits out an outage of Temporal or the dsl-store, never lost.
UNTIL_DONE = RetryPolicy(maximum_interval=timedelta(seconds=30), non_retryable_error_types=[REJECTED])
AWAIT_HEARTBEAT = timedelta(seconds=60)
AWAIT_LIMIT = timedelta(days=3650)


@workflow.defn(name=SCHEDULED_RUN_WORKFLOW)
class ScheduledRunWorkflow:
    @workflow.run
    async def run(self, start: ScheduledStart) -> str:
        """Start the firing's run and return its workflowId once it has closed."""
        info = workflow.info()
        # The firing's nominal time: the same instant the schedule lists under its recent actions.
        fired_at = info.typed_search_attributes.get(SCHEDULED_START) or info.start_time
        job = StartInput(
            tenant=start.tenant,
            schedule_id=start.schedule_id,
            workflow=start.workflow,
            workflow_id=scheduled_workflow_id(start.schedule_id, fired_at),
            # One id per firing: a retried start activity finds the run it already started.
            command_id=f"schedule-{info.run_id}",
            params=start.params,
        )
        await workflow.execute_activity(
            START_ACTIVITY, job, start_to_close_timeout=START_TIMEOUT, retry_policy=UNTIL_DONE
        )
        await workflow.execute_activity(
            AWAIT_ACTIVITY,
            job,
            start_to_close_timeout=AWAIT_LIMIT,
            heartbeat_timeout=AWAIT_HEARTBEAT,
            retry_policy=UNTIL_DONE,
        )
        return job.workflow_id
