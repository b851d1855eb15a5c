"""CHILD: start a pinned workflow definition as a child run, ASYNC (fire and go on) or SYNC (wait).

The child's definition comes from the run's pinned `children` map, never from
the store at run time. The child is a full Drift run with its own public
workflow id, status events and context; it gets the same pinned map, so its
own CHILD nodes resolve too. An ASYNC child outlives its parent (ABANDON);
a SYNC child is terminated with its parent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, CancelledError, ChildWorkflowError, TerminatedError, TimeoutError

from drift_runtime.search_attributes import run_attributes
from drift_schema import expressions
from drift_schema.nodes import ChildNode, ExecutionMode, child_key
from drift_schema.run import RUN_FAILED_ERROR, WORKFLOW_NAME, RunInput, RunSnapshot, failed_run_snapshot, temporal_id
from drift_schema.search import KIND_TEST
from drift_schema.statuses import WorkflowStatus
from drift_worker import patches
from drift_worker.model import TENANT_RUNS_ACTIVITY, NodeResult, NodeTask
from drift_worker.nodes.base import Interpreter, NodeFailure, Step, Visit, WorkflowNode, node_of, render_field

MAX_CHILD_DEPTH = 8
TENANT_RUNS_TIMEOUT = timedelta(seconds=10)
# Asking visibility must eventually succeed: while it is away the CHILD node waits.
TENANT_RUNS_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=10))
"""Children of children nest at most this deep: a definition that starts itself cannot run away."""

# What a child inherits from its parent's `$global`, besides its own `params`.
INHERITED = ("issueDetail", "customer", "orderDetails", "threadContext")


class Child(WorkflowNode):
    type = "CHILD"

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        """The child's `$global.params`."""
        node = node_of(task.node, ChildNode)
        return NodeResult(output=render_field("params", node.params, bindings, bounds))

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        node = node_of(visit.node, ChildNode)
        pinned = run.run_input
        definition = pinned.children.get(child_key(node.child_workflow_id, node.child_workflow_version))
        if definition is None:
            raise NodeFailure(
                f"child workflow '{node.child_workflow_id}' version '{node.child_workflow_version}' "
                "was not pinned when this run started (it did not exist then)"
            )
        if pinned.depth >= MAX_CHILD_DEPTH:
            raise NodeFailure(f"child runs may nest at most {MAX_CHILD_DEPTH} deep")
        params = (await run.evaluate(visit)).output
        # Breadth is bounded too: without it two ASYNC CHILD nodes starting their own workflow make
        # 2^8 runs within the depth bound (ten such nodes 10^8).
        descendants = run.take_descendants(definition)
        # And per tenant: CHILD runs count towards the tenant's running-runs limit, as starts do.
        # Patched in, so histories recorded before the bound existed replay as they ran.
        if run.patched(patches.TENANT_RUNS):
            limit = await workflow.execute_local_activity(
                TENANT_RUNS_ACTIVITY,
                pinned.tenant,
                result_type=int,
                start_to_close_timeout=TENANT_RUNS_TIMEOUT,
                retry_policy=TENANT_RUNS_RETRY,
            )
            if limit:
                raise NodeFailure(f"the tenant has {limit} runs running, its limit: the child run was not started")
        child_id = run.child_workflow_id(visit)
        child = RunInput(
            tenant=pinned.tenant,
            workflow_id=child_id,
            definition=definition,
            context={"params": params, **{key: run.context.get(key) for key in INHERITED}},
            command_id=run.command_id or pinned.command_id,
            enums=pinned.enums,
            children=pinned.children,
            depth=pinned.depth + 1,
            limits=pinned.limits,
            descendants=descendants,
            test=pinned.test,  # a test run's children are test runs too: mocked, unlisted, silent
        )
        mode = node.execution_mode
        handle = await workflow.start_child_workflow(
            WORKFLOW_NAME,
            child,
            id=temporal_id(pinned.tenant, child_id),
            result_type=RunSnapshot,
            parent_close_policy=(
                workflow.ParentClosePolicy.ABANDON
                if mode == ExecutionMode.ASYNC
                else workflow.ParentClosePolicy.TERMINATE
            ),
            memo={"tenant": pinned.tenant, "definitionId": definition.id, "parent": pinned.workflow_id},
            # A test run's children are test runs too (never listed); other children are tagged as they upsert.
            search_attributes=(
                run_attributes(pinned.tenant, definition.id, definition.version, kind=KIND_TEST)
                if pinned.test
                else None
            ),
        )
        output: dict[str, Any] = {"workflowId": child_id}
        if mode == ExecutionMode.SYNC:
            try:
                snapshot = await _within(handle, child_id, node.timeout_ms, run)
            except ChildWorkflowError as error:
                cause = error.cause
                if not (isinstance(cause, ApplicationError) and cause.type == RUN_FAILED_ERROR and cause.details):
                    raise NodeFailure(f"child workflow '{child_id}' {_outcome(error)}") from None
                snapshot = failed_run_snapshot(cause.details)  # the child ended FAILED: its state is the detail
            if snapshot.workflow_status != WorkflowStatus.COMPLETED:
                reason = snapshot.error_message or snapshot.workflow_status.value
                raise NodeFailure(f"child workflow '{child_id}' {snapshot.workflow_status.value}: {reason}")
            output |= {
                "workflowStatus": snapshot.workflow_status.value,
                "disposition": snapshot.disposition,
                "context": snapshot.context,
            }
        await run.completed(visit, output)
        return Step(next_node=visit.next_node, output=output)


async def _within(
    handle: workflow.ChildWorkflowHandle[Any, RunSnapshot], child_id: str, timeout_ms: int | None, run: Interpreter
) -> RunSnapshot:
    """The SYNC child's result; past `timeout_ms` the child is cancelled (it announces TERMINATED) and the node fails.

    Patched in, so histories of SYNC children recorded while `timeoutMs` was ignored replay as they ran.
    """
    if timeout_ms is None or not run.patched(patches.CHILD_TIMEOUT):
        return await handle
    try:
        done, _ = await workflow.wait([handle], timeout=timeout_ms / 1000)
    except asyncio.CancelledError:
        handle.cancel()  # this visit is itself cancelled (a failed PARALLEL sibling): take the child down too
        raise
    if not done:
        handle.cancel()
        # Wait for the child to acknowledge, so it has announced its end before the parent moves on.
        await asyncio.gather(handle, return_exceptions=True)
        raise NodeFailure(f"child workflow '{child_id}' did not finish within timeoutMs ({timeout_ms} ms): cancelled")
    return await handle


def _outcome(error: ChildWorkflowError) -> str:
    """How a child ended without a result (a terminated run cannot say why: its reason stays in its history)."""
    cause = error.cause
    if isinstance(cause, TerminatedError):
        return "was terminated"
    if isinstance(cause, CancelledError):
        return "was cancelled"
    if isinstance(cause, TimeoutError):
        return "timed out"
    return f"did not complete: {cause if cause is not None else error}"
