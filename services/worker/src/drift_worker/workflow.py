"""The generic workflow: one interpreter for every Drift definition.

Deterministic and free of side effects (Temporal's sandbox): expressions are
evaluated and events published by local activities, so a pure node costs one
marker in the run's history; HTTP calls are regular activities with the node's
retry policy; waits are Temporal timers and updates; CHILD nodes are child
workflows; PARALLEL branches are asyncio tasks on the workflow's own loop.

The run's status follows what it holds for: any visit waiting for a person or
an event makes it WAITING, else any visit on a timer makes it
SCHEDULER_WAITING, else it is RUNNING, until a terminal state.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    import msgspec

    from drift_runtime.search_attributes import upsert_status
    from drift_schema import ids, search
    from drift_schema.events import NodeEvent, WorkflowEvent
    from drift_schema.nodes import node_type
    from drift_schema.run import (
        DISCONNECTED_UPDATE,
        EVENT_UPDATE,
        RESUME_UPDATE,
        RUN_FAILED_ERROR,
        STATE_QUERY,
        WORKFLOW_NAME,
        Carry,
        DisconnectedInput,
        DisconnectedResult,
        EventInput,
        ResumeInput,
        RunInput,
        RunSnapshot,
    )
    from drift_schema.statuses import RejectionCode, WorkflowStatus
    from drift_schema.testrun import RETRY_QUERY, RetryPoint, RetryQuery
    from drift_schema.workflow import State, WorkflowDefinition
    from drift_worker import patches
    from drift_worker.activities import MAX_EVENT_CONTEXT_BYTES, SEGMENT_ACTIVITY, NodeActivities
    from drift_worker.model import EmitBatch, NodeResult, NodeTask, SegmentResult, SegmentTask
    from drift_worker.nodes import (
        DISCONNECTABLE,
        NODE_KINDS,
        NodeFailure,
        SelectionError,
        Step,
        Visit,
        check_selections,
    )
    from drift_worker.nodes.map import CURRENT_SCOPE, SLICE_CANNOT_WAIT, run_slice
    from drift_worker.retry import Checkpoints
    from drift_worker.segments import (
        SLICE_MS,
        entry_bytes,
        global_keys,
        is_pure,
        may_end_run,
        node_limit_ms,
        reachable_pure,
        step_of,
    )
    from drift_worker.testing import TEST_EVALUATE, TestMode

DEFAULT_NODE_TIMEOUT = timedelta(seconds=10)
EVALUATE_MARGIN = timedelta(seconds=5)
EMIT_TIMEOUT = timedelta(seconds=10)
# Publishing must eventually succeed: while NATS is away the run waits rather than losing events.
UNTIL_DONE = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
# Continue-as-new far below Temporal's limits (10,240 events warns, 50 MB fails). Local activities
# finished within one workflow task do not move the length the workflow sees until the task ends,
# so visits are counted as well.
CONTINUE_AS_NEW_AFTER_EVENTS = 4_000
CONTINUE_AS_NEW_AFTER_BYTES = 8 * 1024 * 1024
CONTINUE_AS_NEW_AFTER_VISITS = 500
# With segments a pure node adds no history event of its own: a run counts its local activities instead
# (each one marker, invisible in the history length until its workflow task ends), and bounds its visits
# only as far as its memory and its retry checkpoints need.
CONTINUE_AS_NEW_AFTER_LOCAL_ACTIVITIES = 500
CONTINUE_AS_NEW_AFTER_SEGMENTED_VISITS = 10_000
# A loop inside a PARALLEL branch cannot continue-as-new (its siblings are mid-flight): fail it instead.
BRANCH_HISTORY_LIMIT = 9_000
LAST_ERROR_KEY = "lastError"
# Once a run has spent its visit budget, its failure path may still make this many visits to end cleanly.
FAILURE_PATH_VISITS = 100
# Outputs one workflow task may carry before it is ended (its completion is capped at 4 MB by gRPC), and
# evaluations one run has in flight at once: at most 8 more outputs of 256 KiB may land past the mark.
TASK_OUTPUT_BYTES = 1024 * 1024
MAX_CONCURRENT_EVALUATIONS = 8
MAX_WORKFLOW_ID = 128


_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class SegmentPlan:
    """What every segment from one start node shares: its states, the `$global` keys they read, its timeout."""

    states: dict[str, State]
    keys: frozenset[str] | None
    timeout: timedelta
    summary: str
    """How the Temporal UI names a segment's activity: the node it starts at, as that node's own would be."""
    may_end: bool
    """Whether a segment from here may end the run (then it is handed the final status event to fill in)."""


@workflow.defn(name=WORKFLOW_NAME)
class GenericWorkflow:
    @workflow.init
    def __init__(self, run: RunInput) -> None:
        self.run_input = run
        carry = run.carry
        self.context: dict[str, Any] = dict(carry.context if carry else run.context)
        self.seq = carry.seq if carry else 0
        self.visits = carry.node_visits if carry else 0
        self.visits_at_start = self.visits
        # The encoded size of `$global` by top-level key, kept as outputs are written (never re-encoded whole).
        self.context_sizes = {key: entry_bytes(key, value) for key, value in self.context.items()}
        # Output bytes produced in the current workflow task (see _keep_task_small).
        self.task_history_length = 0
        self.task_output_bytes = 0
        self.evaluations = asyncio.Semaphore(MAX_CONCURRENT_EVALUATIONS)
        # When the last segment finished (its activity's clock): no later node starts or ends before it.
        self.clock_floor = ""
        # CHILD runs this run may still cause, itself and through its children (budgets are handed down).
        inherited = run.descendants if run.descendants is not None else run.limits.max_descendants
        self.descendants = carry.descendants if carry and carry.descendants is not None else inherited
        self.command_id: str | None = carry.command_id if carry else run.command_id
        self.command_trace: dict[str, str] = dict(carry.command_trace or {}) if carry else {}
        self.callback_url = carry.callback_url if carry and carry.callback_url else run.callback_url
        self.in_failure_path = carry.in_failure_path if carry else False
        self.status = WorkflowStatus.RUNNING if carry else WorkflowStatus.CREATED
        self.current_node: str | None = carry.current_node if carry else None
        self.disposition: Any = carry.disposition if carry else None
        self.error_message: str | None = None
        self.view: Any = None
        # What the run holds for, by visit number: WAITING or SCHEDULER_WAITING.
        self.holds: dict[int, WorkflowStatus] = {}
        self.awaiting_input: int | None = None
        self.pending_resume: ResumeInput | None = None
        self.event_waits: dict[str, int] = {}
        self.pending_events: dict[str, EventInput] = {}
        # Parallel branches announce concurrently; events must still leave in `seq` order.
        self.emitting = asyncio.Lock()
        # What a retry of this run needs (contract 8.2), and a test run's replacements (8.3).
        self.checkpoints = Checkpoints(carry.skip_branches if carry else None)
        self.test = TestMode(run.test, carry.test_trace if carry else None) if run.test is not None else None
        # Whether pure nodes run in segments (decided once, at the first pure node: see patches.SEGMENTS).
        self.segments: bool | None = None
        # Whether a segment that ends the run publishes its final status (decided with `segments`).
        self.segment_ends = False
        self.segment_plans: dict[str, SegmentPlan] = {}
        # Local activities this run has made (each a marker in its history): see _history_is_long.
        self.local_activities = 0
        # A status event held for the next segment's activity to publish first (see _set_status).
        self.deferred: EmitBatch | None = None
        # Its upsert, held until after that segment (see _upsert_status).
        self.upsert_pending = False
        # Which patches this execution runs (one marker for all of them in a run started now: see patches).
        self.patched = patches.Patches()

    # ----------------------------------------------------------------- run

    @workflow.run
    async def run(self, run: RunInput) -> RunSnapshot:
        if run.map_slice is not None:
            # A slice of a large MAP's items: no status of its own, its parent's node events (see MapSlice).
            return await run_slice(self, run.map_slice)
        start = run.carry.current_node if run.carry else run.definition.start_node
        if run.carry is None or run.carry.retried:
            # A run starting with pure nodes announces RUNNING from its first segment: one local activity less.
            first = run.definition.states.get(start) if start is not None else None
            await self._set_status(WorkflowStatus.RUNNING, defer=first is not None and self._segmented(first))
        if start is None:
            await self._finish(WorkflowStatus.FAILED, error="the workflow definition has no startNode")
        else:
            try:
                await self._walk_main(start)
            except BaseException as error:
                # Cancelled (a SYNC CHILD node whose timeoutMs passed): announce the end, then end as cancelled.
                # Patched in, so histories of cancelled runs recorded before this replay as they ran.
                if not is_cancelled_exception(error) or not self.patched(patches.CANCELLED_RUN):
                    raise
                await self._finish(WorkflowStatus.TERMINATED, error="cancelled by its parent run")
                raise
        if not self.status.is_final:
            await self._finish(WorkflowStatus.COMPLETED)
        await self._post_completion()
        await workflow.wait_condition(workflow.all_handlers_finished)
        snapshot = self.snapshot()
        if snapshot.workflow_status == WorkflowStatus.FAILED and self.patched(patches.FAILED_RUN):
            # Temporal's status, its UI and its listings say FAILED too; the run's state travels as the detail.
            raise ApplicationError(
                snapshot.error_message or "the run failed", snapshot, type=RUN_FAILED_ERROR, non_retryable=True
            )
        return snapshot

    async def _walk_main(self, start: str) -> None:
        """Walk the graph; failures go to `defaultFailureNode`, terminal nodes finish the run."""
        current: str | None = start
        while current is not None:
            if self.upsert_pending and self.deferred is None:
                self._upsert_status()  # the run went on past the segment its status was deferred to
            if self._history_is_long():
                await self._continue_as_new(current)
            state = self.run_input.definition.states.get(current)
            if state is None:
                current = await self._on_node_failure(current, f"state '{current}' does not exist")
                continue
            if self._segmented(state):
                current = await self._run_segment(current)
                continue
            self.current_node = current
            if not self.in_failure_path:
                self.checkpoints.visiting(current, self.context)
            try:
                step = await self._run_state(current, state)
                if step.write_output:
                    self._write_output(current, step.output)
            except NodeFailure as failure:
                current = await self._on_node_failure(current, failure.message)
                continue
            if step.final_status is not None:
                await self._finish(step.final_status, disposition=step.disposition, error=step.error_message)
                return
            current = step.next_node

    def _segmented(self, state: State) -> bool:
        """Whether the main path evaluates this state in a segment (a pure node, visits left, patched in)."""
        if self.test is not None or not is_pure(state) or self._visits_for_segment() < 1:
            return False  # a test run's mocks replace single visits; a spent budget fails the node as before
        if self.segments is None:
            self.segments = self.patched(patches.SEGMENTS)
            self.segment_ends = self.segments and self.patched(patches.SEGMENT_ENDS)
        return self.segments

    def _visits_for_segment(self) -> int:
        """Visits a segment may make: up to the continue-as-new budget and the run's visit budget."""
        budget = self.run_input.limits.max_visits + (FAILURE_PATH_VISITS if self.in_failure_path else 0)
        until_continue = CONTINUE_AS_NEW_AFTER_SEGMENTED_VISITS - (self.visits - self.visits_at_start)
        return min(budget - self.visits, until_continue)

    def _plan(self, start: str) -> SegmentPlan:
        plan = self.segment_plans.get(start)
        if plan is None:
            states = reachable_pure(self.run_input.definition, start)
            slowest = max(node_limit_ms(state) for state in states.values())
            # Waiting for an evaluator, the slice, the last node's own limit, then the acknowledgements.
            timeout = timedelta(milliseconds=2 * slowest + SLICE_MS) + EVALUATE_MARGIN
            first = states[start].node_definition
            summary = f"{start} ({node_type(first) if first is not None else '?'})"
            plan = SegmentPlan(states, global_keys(states), timeout, summary, may_end_run(states))
            self.segment_plans[start] = plan
        return plan

    async def _run_segment(self, start: str) -> str | None:
        """Evaluate pure nodes from `start` in one local activity, then apply each visit as if made alone.

        Answers the node to go on with (None: the run finished or walked off the graph).
        """
        run = self.run_input
        plan = self._plan(start)
        context = self.context if plan.keys is None else {k: self.context[k] for k in plan.keys if k in self.context}
        task = SegmentTask(
            tenant=run.tenant,
            workflow_id=run.workflow_id,
            definition_id=run.definition.id,
            definition_version=run.definition.version,
            start=start,
            states=plan.states,
            context=context,
            enums=run.enums,
            event_prefix=workflow.info().first_execution_run_id,
            first_visit=self.visits + 1,
            max_visits=self._visits_for_segment(),
            context_bytes=self._context_bytes(),
            context_sizes={name: self.context_sizes[name] for name in plan.states if name in self.context_sizes},
            max_context_bytes=run.limits.max_context_bytes,
            lead=self._take_deferred(),
            end=self._final_event() if plan.may_end and self.segment_ends else None,
        )
        self.local_activities += 1
        async with self.evaluations:
            await self._task_room()
            try:
                result: SegmentResult = await workflow.execute_local_activity(
                    SEGMENT_ACTIVITY,
                    task,
                    result_type=SegmentResult,
                    start_to_close_timeout=plan.timeout,
                    retry_policy=UNTIL_DONE,
                    # Named as the node it starts at (the Temporal UI lists it like that node's own activity).
                    summary=plan.summary,
                )
            except BaseException as error:
                if task.end is not None and is_cancelled_exception(error):
                    # Cancelled (by a parent): the activity may have published the run's end under the next seq
                    # already, so the status announcing the cancellation takes the one after it.
                    self.seq += 1
                raise
        self._carried(sum(len(msgspec.json.encode(visit.result.output)) for visit in result.visits))
        if result.finished_at is not None:
            self.clock_floor = max(self.clock_floor, result.finished_at)
        current: str | None = start
        for made in result.visits:
            state = plan.states[made.instance]
            self.visits += 1
            self.current_node = made.instance
            if not self.in_failure_path:
                self.checkpoints.visiting(made.instance, self.context)
            step = step_of(made.instance, state, self.visits, made.result)
            if step.write_output:
                try:
                    self._write_output(made.instance, step.output)
                except NodeFailure as failure:
                    return await self._on_node_failure(made.instance, failure.message)
            if step.final_status is not None:
                await self._finish(
                    step.final_status, disposition=step.disposition, error=step.error_message, announced=result.ended
                )
                return None
            current = step.next_node
        if result.ended and current is None:
            # Walked off the graph: the run completes (as `run` would finish it), already announced.
            await self._finish(WorkflowStatus.COMPLETED, announced=True)
            return None
        if result.failed is None:
            if not result.visits:
                raise RuntimeError(f"the segment from '{start}' made no visit")  # never: a segment makes one
            return current
        failed = plan.states[result.failed]
        assert failed.node_definition is not None
        self.visits += 1
        self.current_node = result.failed
        if not self.in_failure_path:
            self.checkpoints.visiting(result.failed, self.context)
        visit = Visit(
            instance=result.failed,
            state=failed,
            node=failed.node_definition,
            number=self.visits,
            started_at=self._clock(),
            parameters=failed.parameters,
        )
        message = result.error or f"'{result.failed}' failed"
        await self._announce([self._node_event(visit, "FAILED", None, message, result.attempt)])
        return await self._on_node_failure(result.failed, message)

    async def walk_branch(self, start: str) -> None:
        """Run states from `start` along `nextNode` until `end` or no `nextNode`; a failure ends the walk.

        Used for PARALLEL branches and post-completion nodes: a SUCCESS ends the
        walk, a FAILURE fails it, and neither changes the run's status.
        """
        in_item = CURRENT_SCOPE.get() is not None
        if not in_item and self.checkpoints.skip_branch(start):
            return  # completed before the failure this run was retried from: its outputs are in $global
        current: str | None = start
        while current is not None:
            if workflow.info().get_current_history_length() > BRANCH_HISTORY_LIMIT:
                raise NodeFailure(f"the branch from '{start}' loops too long to run inside one history")
            state = self.run_input.definition.states.get(current)
            if state is None:
                raise NodeFailure(f"state '{current}' does not exist")
            self.current_node = current
            step = await self._run_state(current, state)
            if step.write_output:
                self._write_output(current, step.output)
            if step.final_status == WorkflowStatus.FAILED:
                raise NodeFailure(step.error_message or f"'{current}' failed")
            if step.final_status is not None:
                break
            current = step.next_node
        if not in_item:
            self.checkpoints.branch_completed(start)

    async def _run_state(self, instance: str, state: State, parameters: dict[str, Any] | None = None) -> Step:
        """One visit of one state; any failure is announced once and raised as NodeFailure."""
        node = state.node_definition
        if node is None:
            raise NodeFailure(f"state '{instance}' has no pinned node definition")
        kind = NODE_KINDS.get(node_type(node))
        if kind is None:
            raise NodeFailure(f"node type {node_type(node)} is not supported")
        budget = self.run_input.limits.max_visits
        if self.visits >= budget + (FAILURE_PATH_VISITS if self.in_failure_path else 0):
            raise NodeFailure(
                f"the run has made {self.visits} node visits, its budget of {budget}: "
                f"'{instance}' does not run (a loop that never exits?)"
            )
        self.visits += 1
        visit = Visit(
            instance=instance,
            state=state,
            node=node,
            number=self.visits,
            started_at=self._clock(),
            parameters=state.parameters if parameters is None else parameters,
            scope=CURRENT_SCOPE.get(),
        )
        try:
            if self.test is not None and (mocked := await self.test.intercept(self, visit)) is not None:
                return mocked
            return await kind.execute(self, visit)
        except (NodeFailure, FailureError) as failure:
            if is_cancelled_exception(failure):
                raise
            message, attempt = _failure_details(failure)
            await self._announce([self._node_event(visit, "FAILED", None, message, attempt)])
            raise NodeFailure(message) from None

    async def _on_node_failure(self, instance: str, message: str) -> str | None:
        """Route a failed node to `defaultFailureNode` once; a failure on that path fails the run."""
        failure_node = self.run_input.definition.default_failure_node
        if not self.in_failure_path:
            self.checkpoints.failed(instance)
        self._put(LAST_ERROR_KEY, {"node": instance, "message": message})
        if failure_node is not None and not self.in_failure_path and failure_node != instance:
            self.in_failure_path = True
            return failure_node
        await self._finish(WorkflowStatus.FAILED, error=message)
        return None

    def _write_output(self, instance: str, output: Any) -> None:
        """Write a visit's output into `$global`; NodeFailure when the context would pass its size bound.

        The bound keeps every payload that carries the context (the run's result, its continue-as-new
        input, status events) under Temporal's limit: past it Temporal refuses the workflow task and
        retries it forever, re-running every node.
        """
        scope = CURRENT_SCOPE.get()
        if scope is not None:
            # Inside a MAP item: the item's own outputs (the MAP's output list is bounded when it is written).
            scope.outputs[instance] = output
            scope.last = output
            return
        limit = self.run_input.limits.max_context_bytes
        size = entry_bytes(instance, output)
        total = self._context_bytes() - self.context_sizes.get(instance, 0) + size
        if total > limit:
            raise NodeFailure(
                f"the output of '{instance}' ({size} bytes) would make the run's context {total} bytes, "
                f"over its limit of {limit} bytes"
            )
        self._put(instance, output)

    def _carried(self, size: int) -> None:
        """Count `size` bytes of local activity results into the current workflow task."""
        length = workflow.info().get_current_history_length()
        if length != self.task_history_length:
            self.task_history_length = length
            self.task_output_bytes = 0
        self.task_output_bytes += size

    async def _task_room(self) -> None:
        """Wait for the next workflow task while the current one carries over `TASK_OUTPUT_BYTES` of results.

        Local activity results (every pure node's output) ride in the workflow task's completion,
        which gRPC caps at 4 MB: a loop of large outputs, or a PARALLEL of them, inside one task got
        the run terminated (GrpcMessageTooLarge) with no status event. A 1 ms timer ends the task.
        Deterministic: the history length only changes at task boundaries, in replay too.
        """
        while True:
            length = workflow.info().get_current_history_length()
            if length != self.task_history_length or self.task_output_bytes <= TASK_OUTPUT_BYTES:
                return
            await workflow.sleep(timedelta(milliseconds=1))

    def _put(self, key: str, value: Any) -> None:
        self.context[key] = value
        self.context_sizes[key] = entry_bytes(key, value)

    def _context_bytes(self) -> int:
        return 2 + sum(self.context_sizes.values())

    def visits_left(self) -> int:
        return max(0, self.run_input.limits.max_visits - self.visits)

    def spend_visits(self, count: int) -> None:
        self.visits += count

    def descendants_left(self) -> int:
        return self.descendants

    def spend_descendants(self, count: int) -> None:
        self.descendants = max(0, self.descendants - count)

    def take_descendants(self, child: WorkflowDefinition) -> int:
        """Reserve one CHILD run of this run's descendant budget; answer the budget handed to the child.

        Budgets are carved out of the parent's, so a whole tree of runs stays within the root's bound
        without any coordination between runs. A child whose definition starts no children gets none;
        one that may gets half of what remains. NodeFailure when the budget is spent.
        """
        if self.descendants < 1:
            limit = self.run_input.limits.max_descendants
            raise NodeFailure(
                f"the run has started all the CHILD runs its budget allows ({limit} in all, counting "
                "the children's own children)"
            )
        self.descendants -= 1
        if not _starts_children(child):
            return 0
        handed = self.descendants // 2
        self.descendants -= handed
        return handed

    async def _post_completion(self) -> None:
        """Run `postWorkflowCompletionNodes` after the terminal state; their outcome leaves it as is."""
        final_node = self.current_node
        for name in self.run_input.definition.post_workflow_completion_nodes:
            try:
                await self.walk_branch(name)
            except NodeFailure:
                continue  # already announced as a FAILED node event
        self.current_node = final_node

    # ------------------------------------------------------ continue-as-new

    def _history_is_long(self) -> bool:
        info = workflow.info()
        visits = self.visits - self.visits_at_start
        if self.segments:
            counted = (
                visits >= CONTINUE_AS_NEW_AFTER_SEGMENTED_VISITS
                or self.local_activities >= CONTINUE_AS_NEW_AFTER_LOCAL_ACTIVITIES
            )
        else:
            counted = visits >= CONTINUE_AS_NEW_AFTER_VISITS
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > CONTINUE_AS_NEW_AFTER_EVENTS
            or info.get_current_history_size() > CONTINUE_AS_NEW_AFTER_BYTES
            or counted
        )

    async def _continue_as_new(self, current: str) -> None:
        # Between states nothing waits; only update handlers (disconnected nodes) may be mid-flight.
        await workflow.wait_condition(workflow.all_handlers_finished)
        carry = Carry(
            current_node=current,
            context=self.context,
            seq=self.seq,
            node_visits=self.visits,
            command_id=self.command_id,
            in_failure_path=self.in_failure_path,
            callback_url=self.callback_url,
            disposition=self.disposition,
            command_trace=self.command_trace or None,
            descendants=self.descendants,
            test_trace=self.test.carried() if self.test is not None else None,
        )
        # Everything pinned (definition, children, enums) rides along unchanged.
        workflow.continue_as_new(msgspec.structs.replace(self.run_input, carry=carry))

    # ------------------------------------------------- Interpreter protocol

    def task(self, visit: Visit) -> NodeTask:
        """Everything an activity needs to evaluate this visit."""
        run = self.run_input
        return NodeTask(
            tenant=run.tenant,
            workflow_id=run.workflow_id,
            definition_id=run.definition.id,
            definition_version=run.definition.version,
            instance=visit.instance if visit.scope is None else visit.scope.label(visit.instance),
            node=visit.node,
            parameters=visit.parameters,
            context=self.context if visit.scope is None else visit.scope.overlay(self.context),
            enums=run.enums,
            event_id=ids.node_event_id(workflow.info().first_execution_run_id, visit.number),
            started_at=visit.started_at,
            bindings=None if visit.scope is None else visit.scope.bindings(),
        )

    def summary(self, visit: Visit) -> str:
        """How the Temporal UI names an activity of this visit: the Drift node's instance and type.

        Metadata only (not part of what replay compares), so older histories replay unchanged.
        """
        instance = visit.instance if visit.scope is None else visit.scope.label(visit.instance)
        return f"{instance} ({node_type(visit.node)})"

    async def evaluate(self, visit: Visit) -> NodeResult:
        """Evaluate one visit of a node in a local activity (one history marker)."""
        node = visit.node
        # The activity enforces the node's own timeoutMs (and fails the node); Temporal's timeout, which
        # would only retry the attempt, leaves room for that and for publishing the node's event.
        timeout = timedelta(milliseconds=node.timeout_ms) + EVALUATE_MARGIN if node.timeout_ms else DEFAULT_NODE_TIMEOUT
        if self.test is not None:
            # Same evaluation, nothing published: the visit goes to the test run's trace instead.
            result: NodeResult = await workflow.execute_local_activity(
                TEST_EVALUATE,
                self.task(visit),
                result_type=NodeResult,
                start_to_close_timeout=timeout,
                summary=self.summary(visit),
            )
            if NODE_KINDS[node_type(visit.node)].announced_by_evaluate:
                self.test.completed(visit, result.output)
            return result
        # A few evaluations at a time, and none once this workflow task carries many outputs: their
        # results ride in the task's completion, which gRPC caps at 4 MB (see _task_room).
        self.local_activities += 1
        async with self.evaluations:
            await self._task_room()
            evaluated = await workflow.execute_local_activity_method(
                NodeActivities.evaluate_node,
                self.task(visit),
                start_to_close_timeout=timeout,
                retry_policy=UNTIL_DONE,
                summary=self.summary(visit),
            )
        self._carried(len(msgspec.json.encode(evaluated.output)))
        return evaluated

    async def wait_for_input(self, visit: Visit, result: NodeResult, timeout_ms: int | None = None) -> dict[str, Any]:
        """Go WAITING with the rendered view until a valid resume arrives (one view at a time).

        NodeFailure when `timeout_ms` passes first (counted from when this view is shown).
        """
        if self.test is not None:
            return self.test.selections(visit, result.view)
        if self.run_input.map_slice is not None:
            raise NodeFailure(SLICE_CANNOT_WAIT)
        await workflow.wait_condition(lambda: self.awaiting_input is None)
        self.awaiting_input = visit.number
        self.view = result.view
        self.disposition = result.disposition
        try:
            limit = timedelta(milliseconds=timeout_ms) if timeout_ms is not None else None
            answered = await self._hold(visit, WorkflowStatus.WAITING, lambda: self.pending_resume is not None, limit)
        finally:
            # What the view awaited (AWAITING_APPROVAL) must not outlive it: not on RUNNING, nor on a FAILED end.
            self.awaiting_input = None
            self.view = None
            self.disposition = None
        if not answered:
            raise NodeFailure(f"nobody answered within timeoutMs ({timeout_ms} ms)")
        resume = self.pending_resume
        assert resume is not None
        self.pending_resume = None
        self.command_id = resume.command_id
        self.command_trace = resume.trace_context
        if resume.callback_url:
            self.callback_url = resume.callback_url
        return resume.selected_options

    async def wait_for_event(self, visit: Visit, event: str, timeout_seconds: float | None) -> Any:
        """Go WAITING until the `event` update names `event`; NodeFailure when the timeout passes first."""
        if self.test is not None:
            return self.test.event(visit, event)
        if self.run_input.map_slice is not None:
            raise NodeFailure(SLICE_CANNOT_WAIT)
        self.event_waits[event] = self.event_waits.get(event, 0) + 1
        try:
            timeout = timedelta(seconds=timeout_seconds) if timeout_seconds else None
            arrived = await self._hold(visit, WorkflowStatus.WAITING, lambda: event in self.pending_events, timeout)
        finally:
            self.event_waits[event] -= 1
            if not self.event_waits[event]:
                del self.event_waits[event]
        if not arrived:
            raise NodeFailure(f"event '{event}' did not arrive within {timeout_seconds:g} seconds")
        received = self.pending_events[event]
        if event not in self.event_waits:
            # Every visit waiting for this name has seen it: the next wait needs a new event.
            del self.pending_events[event]
        self.command_id = received.command_id
        self.command_trace = received.trace_context
        return received.payload

    async def sleep(self, visit: Visit, seconds: float) -> None:
        """Go SCHEDULER_WAITING on a Temporal timer; a time already past continues at once."""
        if seconds > 0 and self.test is None:  # a test run's timers fire at once
            await self._hold(visit, WorkflowStatus.SCHEDULER_WAITING, lambda: False, timedelta(seconds=seconds))

    async def completed(self, visit: Visit, output: Any) -> None:
        """Announce a visit's completion (nodes whose activity did not), with any status change it causes."""
        await self._announce([self._node_event(visit, "COMPLETED", output)])

    def child_workflow_id(self, visit: Visit) -> str:
        """`<parent>-<instance>-<visit>-<run chain>`: unique per visit, stable on replay, a valid public id."""
        chain = workflow.info().first_execution_run_id.replace("-", "")[:8]
        instance = _UNSAFE_ID_CHARS.sub("_", visit.instance)
        candidate = f"{self.run_input.workflow_id}-{instance}-{visit.number}-{chain}"
        if len(candidate) <= MAX_WORKFLOW_ID:
            return candidate
        digest = hashlib.sha256(candidate.encode()).hexdigest()[:16]
        return f"{candidate[: MAX_WORKFLOW_ID - len(digest) - 1]}-{digest}"

    async def _hold(
        self, visit: Visit, status: WorkflowStatus, until: Callable[[], bool], limit: timedelta | None
    ) -> bool:
        """Hold this visit in `status` until `until()` is true; False when `limit` passed first."""
        self.holds[visit.number] = status
        self.current_node = visit.instance
        try:
            await self._announce([])
            try:
                await workflow.wait_condition(until, timeout=limit)
            except TimeoutError:
                return False
            return True
        finally:
            del self.holds[visit.number]

    # ------------------------------------------------- queries and updates

    @workflow.query(name=STATE_QUERY)
    def state(self) -> RunSnapshot:
        return self.snapshot()

    @workflow.query(name=RETRY_QUERY)
    def retry_point(self, query: RetryQuery) -> RetryPoint:
        """Where a retry of this (closed) run starts, with `$global` as it was before that node."""
        return self.checkpoints.point(
            query.from_node,
            self.run_input.definition,
            self.status,
            self.context,
            self.seq,
            self.visits,
            self.callback_url,
        )

    @workflow.update(name=RESUME_UPDATE)
    def resume(self, resume: ResumeInput) -> None:
        self.pending_resume = resume

    @resume.validator
    def validate_resume(self, resume: ResumeInput) -> None:
        if self.awaiting_input is None or self.pending_resume is not None:
            raise ApplicationError(
                f"run is {self.status.value}, not WAITING for input",
                type=RejectionCode.CONFLICT.value,
                non_retryable=True,
            )
        try:
            check_selections(self.view, resume.selected_options)
        except SelectionError as error:
            raise ApplicationError(str(error), type=RejectionCode.INVALID.value, non_retryable=True) from None

    @workflow.update(name=EVENT_UPDATE)
    def event(self, event: EventInput) -> None:
        self.pending_events[event.event] = event

    @event.validator
    def validate_event(self, event: EventInput) -> None:
        if event.event not in self.event_waits or event.event in self.pending_events:
            raise ApplicationError(
                f"run is {self.status.value}, not waiting for event '{event.event}'",
                type=RejectionCode.CONFLICT.value,
                non_retryable=True,
            )

    @workflow.update(name=DISCONNECTED_UPDATE)
    async def disconnected(self, request: DisconnectedInput) -> DisconnectedResult:
        """Run one state against the pinned definitions and the current context; the run does not move."""
        state = self.run_input.definition.states[request.node]
        parameters = {**state.parameters, **request.parameters}
        workflow_id = self.run_input.workflow_id
        try:
            step = await self._run_state(request.node, state, parameters)
        except NodeFailure as failure:
            return DisconnectedResult(
                workflow_id=workflow_id, node=request.node, status="FAILURE", response={"error": failure.message}
            )
        status = "FAILURE" if step.final_status == WorkflowStatus.FAILED else "SUCCESS"
        return DisconnectedResult(workflow_id=workflow_id, node=request.node, status=status, response=step.output)

    @disconnected.validator
    def validate_disconnected(self, request: DisconnectedInput) -> None:
        state = self.run_input.definition.states.get(request.node)
        if state is None:
            raise ApplicationError(
                f"state '{request.node}' does not exist", type=RejectionCode.NOT_FOUND.value, non_retryable=True
            )
        kind = node_type(state.node_definition) if state.node_definition is not None else None
        if kind not in DISCONNECTABLE:
            raise ApplicationError(
                f"state '{request.node}' is a {kind} node; only {', '.join(sorted(DISCONNECTABLE))} run disconnected",
                type=RejectionCode.INVALID.value,
                non_retryable=True,
            )

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
            trace=self.test.trace() if self.test is not None else None,
            trace_omitted=self.test.omitted if self.test is not None else 0,
        )

    def _node_event(
        self, visit: Visit, status: str, output: Any, error: str | None = None, attempt: int = 1
    ) -> NodeEvent:
        return NodeEvent(
            event_id=ids.node_event_id(workflow.info().first_execution_run_id, visit.number),
            workflow_id=self.run_input.workflow_id,
            tenant=self.run_input.tenant,
            instance_name=visit.instance if visit.scope is None else visit.scope.label(visit.instance),
            node_type=node_type(visit.node),
            status=status,
            output=output,
            error=error,
            attempt=attempt,
            started_at=visit.started_at,
            finished_at=self._clock(),
        )

    def _clock(self) -> str:
        """Now, for a node's start or end: the workflow's time, but never before the last segment finished.

        `workflow.now()` stands still for a whole workflow task, so a node following a segment in the same task
        would otherwise start before the segment's nodes finished (`drift get --timeline` showed it so).
        """
        return max(_iso(workflow.now()), self.clock_floor)

    def _held_status(self) -> WorkflowStatus:
        held = set(self.holds.values())
        for status in (WorkflowStatus.WAITING, WorkflowStatus.SCHEDULER_WAITING):
            if status in held:
                return status
        return WorkflowStatus.RUNNING

    async def _announce(self, nodes: list[NodeEvent]) -> None:
        """Publish node events, with a status event when what the run holds for changed its status."""
        if not self.status.is_final and self.run_input.map_slice is None:  # a MAP slice has no status of its own
            status = self._held_status()
            if status != self.status:
                await self._set_status(status, nodes)
                return
        if nodes:
            await self._emit(EmitBatch(nodes=nodes))

    async def _finish(
        self, status: WorkflowStatus, disposition: Any = None, error: str | None = None, announced: bool = False
    ) -> None:
        """End the run in `status`; `announced`: a segment's activity already published its status event."""
        # The final node's disposition, or none: the run's final status and disposition agree everywhere.
        self.disposition = disposition
        self.error_message = error
        self.view = None
        await self._set_status(status, announced=announced)

    def _final_event(self) -> EmitBatch | None:
        """The status event that ends the run, as it stands now: a segment fills in its status, node and outputs.

        None when the context is too large to carry into every segment that may end the run: the status
        event would omit it anyway (see `NodeActivities.publish_batch`), and the workflow publishes it.
        """
        if self._context_bytes() > MAX_EVENT_CONTEXT_BYTES:
            return None
        # The fields `_set_status` fills from the run; status, node, disposition and error are the segment's.
        return self._traced(EmitBatch(status=self._status_event(WorkflowStatus.COMPLETED, self.seq + 1)))

    def _status_event(self, status: WorkflowStatus, seq: int) -> WorkflowEvent:
        """The run's status event number `seq`, with what the run holds now."""
        run = self.run_input
        return WorkflowEvent(
            workflow_id=run.workflow_id,
            workflow_status=status,
            current_node=self.current_node,
            disposition=self.disposition,
            error_message=self.error_message,
            view=self.view,
            event_id=ids.status_event_id(workflow.info().first_execution_run_id, seq),
            tenant=run.tenant,
            seq=seq,
            command_id=self.command_id,
            callback_url=self.callback_url,
            # The notifier keeps every stable state, context included, in the dsl-store's run-context store.
            context=dict(self.context) if status.is_stable else None,
        )

    async def _set_status(
        self,
        status: WorkflowStatus,
        nodes: list[NodeEvent] | None = None,
        defer: bool = False,
        announced: bool = False,
    ) -> None:
        """Announce `status`; `defer`: in the next local activity that publishes (the next segment); `announced`:
        a segment's activity published it (`_final_event`, filled in)."""
        self.status = status
        self.seq += 1
        deferred = defer and self.test is None
        self.upsert_pending = deferred and self.patched.current()
        if not self.upsert_pending:
            self._upsert_status()
        if announced:
            return
        batch = EmitBatch(nodes=nodes or [], status=self._status_event(status, self.seq))
        if deferred:
            self.deferred = self._traced(batch)
            return
        await self._emit(batch)

    def _upsert_status(self) -> None:
        """Upsert the run's status: listing (GET /v3/workflows) filters on it.

        Patched, so runs recorded before it still replay. A status deferred to the next segment is upserted
        after that segment instead (`upsert_pending`), or never when the segment ends the run: Temporal makes
        an upsert visible only when its workflow task completes, and the segment runs inside that task, so the
        upsert it skips is one nobody could have seen.
        """
        self.upsert_pending = False
        run = self.run_input
        upsert_status(
            self.patched(search.STATUS_PATCH), run.tenant, run.definition.id, run.definition.version, self.status
        )

    def _traced(self, batch: EmitBatch) -> EmitBatch:
        return msgspec.structs.replace(batch, trace_context=self.command_trace) if self.command_trace else batch

    def _take_deferred(self) -> EmitBatch | None:
        deferred, self.deferred = self.deferred, None
        return deferred

    async def _emit(self, batch: EmitBatch) -> None:
        if self.test is not None:
            self.test.record(batch.nodes)  # a test run publishes nothing: no store, no list, no webhook
            return
        if (deferred := self._take_deferred()) is not None:
            await self._emit(deferred)  # never: a deferred event goes with the segment that follows it
        batch = self._traced(batch)
        self.local_activities += 1
        async with self.emitting:
            await workflow.execute_local_activity_method(
                NodeActivities.emit, batch, start_to_close_timeout=EMIT_TIMEOUT, retry_policy=UNTIL_DONE
            )


def _failure_details(failure: BaseException) -> tuple[str, int]:
    """The innermost message of a failure, and the activity attempt it came from when known."""
    if isinstance(failure, NodeFailure):
        return failure.message, 1
    cause: BaseException = failure
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    message = str(getattr(cause, "message", None) or cause)
    attempt = 1
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], int):
        attempt = cause.details[0]
    return message, attempt


def _starts_children(definition: WorkflowDefinition) -> bool:
    return any(
        state.node_definition is not None and node_type(state.node_definition) == "CHILD"
        for state in definition.states.values()
    )


def _iso(moment: Any) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
