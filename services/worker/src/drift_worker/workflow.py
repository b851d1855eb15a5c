"""The generic workflow: one interpreter for every Drift definition.

Deterministic and free of side effects (Temporal's sandbox): expressions are
evaluated and events published by local activities, so a pure node costs one
marker in the run's history.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from drift_schema.events import NodeEvent, WorkflowEvent
    from drift_schema.nodes import NodeDefinition, node_type
    from drift_schema.run import (
        RESUME_UPDATE,
        STATE_QUERY,
        WORKFLOW_NAME,
        Carry,
        ResumeInput,
        RunInput,
        RunSnapshot,
    )
    from drift_schema.statuses import RejectionCode, WorkflowStatus
    from drift_schema.workflow import State

    from drift_worker.activities import NodeActivities
    from drift_worker.model import EmitBatch, NodeResult, NodeTask
    from drift_worker.nodes import NODE_KINDS, SelectionError, check_selections

DEFAULT_NODE_TIMEOUT = timedelta(seconds=10)
EMIT_TIMEOUT = timedelta(seconds=10)
# Publishing must eventually succeed: while NATS is away the run waits rather than losing events.
UNTIL_DONE = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
CONTINUE_AS_NEW_AFTER_EVENTS = 8_000
LAST_ERROR_KEY = "lastError"


@workflow.defn(name=WORKFLOW_NAME)
class GenericWorkflow:
    @workflow.init
    def __init__(self, run: RunInput) -> None:
        self.run_input = run
        carry = run.carry
        self.context: dict[str, Any] = dict(carry.context if carry else run.context)
        self.seq = carry.seq if carry else 0
        self.visits = carry.node_visits if carry else 0
        self.command_id: str | None = carry.command_id if carry else run.command_id
        self.status = WorkflowStatus.RUNNING if carry else WorkflowStatus.CREATED
        self.current_node: str | None = None
        self.disposition: Any = None
        self.error_message: str | None = None
        self.view: Any = None
        self.pending_resume: ResumeInput | None = None
        self.in_failure_path = False

    # ----------------------------------------------------------------- run

    @workflow.run
    async def run(self, run: RunInput) -> RunSnapshot:
        definition = run.definition
        current = run.carry.current_node if run.carry else definition.start_node
        if run.carry is None:
            await self._set_status(WorkflowStatus.RUNNING)
        while current is not None:
            if self._history_is_long():
                workflow.continue_as_new(self._carry(current))
            state = definition.states.get(current)
            if state is None:
                await self._finish(WorkflowStatus.FAILED, error=f"state '{current}' does not exist")
                break
            self.current_node = current
            try:
                step = await self._execute(current, state)
            except (ActivityError, ApplicationError) as failure:
                current = await self._on_node_failure(current, _failure_message(failure))
                continue
            if step.write_output:
                self.context[current] = step.output
            if step.final_status is not None:
                await self._finish(step.final_status, disposition=step.disposition, error=step.error_message)
                break
            current = step.next_node
        if not self.status.is_final:
            await self._finish(WorkflowStatus.COMPLETED, disposition=self.disposition)
        return self.snapshot()

    async def _execute(self, instance: str, state: State) -> Any:
        node = state.node_definition
        if node is None:
            raise ApplicationError(f"state '{instance}' has no pinned node definition", non_retryable=True)
        kind = NODE_KINDS.get(node_type(node))
        if kind is None:
            raise ApplicationError(f"node type {node_type(node)} is not supported yet", non_retryable=True)
        return await kind.execute(self, instance, state, node)

    async def _on_node_failure(self, instance: str, message: str) -> str | None:
        """Route a failed node to `defaultFailureNode` once; a failure on that path fails the run."""
        failure_node = self.run_input.definition.default_failure_node
        self.context[LAST_ERROR_KEY] = {"node": instance, "message": message}
        if failure_node is not None and not self.in_failure_path and failure_node != instance:
            self.in_failure_path = True
            return failure_node
        await self._finish(WorkflowStatus.FAILED, error=message)
        return None

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > CONTINUE_AS_NEW_AFTER_EVENTS
        )

    def _carry(self, current: str) -> RunInput:
        carry = Carry(
            current_node=current,
            context=self.context,
            seq=self.seq,
            node_visits=self.visits,
            command_id=self.command_id,
        )
        run = self.run_input
        return RunInput(
            tenant=run.tenant,
            workflow_id=run.workflow_id,
            definition=run.definition,
            context=run.context,
            command_id=run.command_id,
            enums=run.enums,
            callback_url=run.callback_url,
            carry=carry,
        )

    # ------------------------------------------------- Interpreter protocol

    async def evaluate(self, instance: str, state: State, node: NodeDefinition) -> NodeResult:
        """Evaluate one visit of a node in a local activity (one history marker)."""
        self.visits += 1
        run = self.run_input
        task = NodeTask(
            tenant=run.tenant,
            workflow_id=run.workflow_id,
            definition_id=run.definition.id,
            definition_version=run.definition.version,
            instance=instance,
            node=node,
            parameters=state.parameters,
            context=self.context,
            enums=run.enums,
            event_id=self._event_id("n", self.visits),
            started_at=_iso(workflow.now()),
        )
        timeout = timedelta(milliseconds=node.timeout_ms) if node.timeout_ms else DEFAULT_NODE_TIMEOUT
        return await workflow.execute_local_activity_method(
            NodeActivities.evaluate_node, task, start_to_close_timeout=timeout, retry_policy=UNTIL_DONE
        )

    async def wait_for_input(self, instance: str, node: NodeDefinition, result: NodeResult) -> dict[str, Any]:
        """Go WAITING with the rendered view until a valid resume arrives."""
        started_at = _iso(workflow.now())
        self.view = result.view
        self.disposition = result.disposition
        await self._set_status(WorkflowStatus.WAITING)
        await workflow.wait_condition(lambda: self.pending_resume is not None)
        resume = self.pending_resume
        assert resume is not None
        self.pending_resume = None
        self.view = None
        self.command_id = resume.command_id
        completed = NodeEvent(
            event_id=self._event_id("n", self.visits) + "c",
            workflow_id=self.run_input.workflow_id,
            tenant=self.run_input.tenant,
            instance_name=instance,
            node_type=node_type(node),
            status="COMPLETED",
            output={"selectedOptions": resume.selected_options},
            started_at=started_at,
            finished_at=_iso(workflow.now()),
        )
        await self._set_status(WorkflowStatus.RUNNING, nodes=[completed])
        return resume.selected_options

    # ------------------------------------------------- queries and updates

    @workflow.query(name=STATE_QUERY)
    def state(self) -> RunSnapshot:
        return self.snapshot()

    @workflow.update(name=RESUME_UPDATE)
    def resume(self, resume: ResumeInput) -> None:
        self.pending_resume = resume
        # A second resume must see the run as moving on, before its status event is out.
        self.status = WorkflowStatus.RUNNING

    @resume.validator
    def validate_resume(self, resume: ResumeInput) -> None:
        if self.status != WorkflowStatus.WAITING or self.pending_resume is not None:
            raise ApplicationError(
                f"run is {self.status.value}, not WAITING",
                type=RejectionCode.CONFLICT.value,
                non_retryable=True,
            )
        try:
            check_selections(self.view, resume.selected_options)
        except SelectionError as error:
            raise ApplicationError(str(error), type=RejectionCode.INVALID.value, non_retryable=True) from None

    # ------------------------------------------------------------ helpers

    def snapshot(self) -> RunSnapshot:
        return RunSnapshot(
            workflow_id=self.run_input.workflow_id,
            workflow_status=self.status,
            current_node=self.current_node,
            disposition=self.disposition,
            error_message=self.error_message,
            view=self.view,
            context=self.context,
            seq=self.seq,
        )

    def _event_id(self, kind: str, number: int) -> str:
        # Stable across continue-as-new and replays: one id per event of this run chain.
        return f"{workflow.info().first_execution_run_id}:{kind}{number}"

    async def _finish(
        self, status: WorkflowStatus, disposition: Any = None, error: str | None = None
    ) -> None:
        if disposition is not None:
            self.disposition = disposition
        self.error_message = error
        self.view = None
        await self._set_status(status)

    async def _set_status(self, status: WorkflowStatus, nodes: list[NodeEvent] | None = None) -> None:
        self.status = status
        self.seq += 1
        run = self.run_input
        event = WorkflowEvent(
            workflow_id=run.workflow_id,
            workflow_status=status,
            current_node=self.current_node,
            disposition=self.disposition,
            error_message=self.error_message,
            view=self.view,
            event_id=self._event_id("s", self.seq),
            tenant=run.tenant,
            seq=self.seq,
            command_id=self.command_id,
            callback_url=run.callback_url,
        )
        await workflow.execute_local_activity_method(
            NodeActivities.emit,
            EmitBatch(nodes=nodes or [], status=event),
            start_to_close_timeout=EMIT_TIMEOUT,
            retry_policy=UNTIL_DONE,
        )


def _failure_message(failure: BaseException) -> str:
    cause = failure.cause if isinstance(failure, ActivityError) and failure.cause is not None else failure
    return str(getattr(cause, "message", None) or cause)


def _iso(moment: Any) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
