"""`drift.<tenant>.cmd.retry`: run a FAILED or TERMINATED run again from a node (contract 8.2).

A retry starts a new Temporal execution under the run's own workflow id, on the definitions the
run pinned (read back from its closed execution's start event), with a `Carry` holding the node
to start from, `$global` as it was before that node ran and the run's `seq` (the closed run
answers the `retryPoint` query with them). Nodes that completed before it are not executed again;
the run keeps its workflow id and its events continue its sequence.

Why not Temporal's reset: reset replays a history prefix inside the last execution only, so it
cannot reach a node visited before a continue-as-new, cannot start from a node other than one
where a workflow task ended, and re-runs every pure node evaluated in the same workflow task as
the failed one (their events would then be published twice under new sequence numbers). A new
execution with an explicit carry is the same mechanism continue-as-new already uses.

A refused retry changes nothing: every check happens before the one `start_workflow` call, and
`runId` (the closed execution the caller saw) makes exactly one of concurrent retries win.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from drift_dispatcher.faults import TRANSIENT_RPC, Rejected, temporal_unavailable
from drift_runtime.telemetry import inject_headers
from drift_runtime.temporal import RETRIABLE_EXECUTIONS, closes_soon
from drift_schema.commands import RetryCommand
from drift_schema.run import Carry, RunInput, temporal_id
from drift_schema.statuses import RejectionCode, WorkflowStatus
from drift_schema.testrun import RETRY_QUERY, RetryPoint, RetryQuery

if TYPE_CHECKING:
    from drift_dispatcher.commands import CommandDispatcher

log = structlog.get_logger("drift.dispatcher")

QUERY_TIMEOUT = timedelta(seconds=30)
"""A closed run answers the query by being replayed on a worker: allow for a long history."""


class RetryRefused(Rejected):
    """The retry cannot run (nothing started); the dispatcher answers it with a REJECTED event of this code."""


async def retry_run(dispatcher: CommandDispatcher, tenant: str, command: RetryCommand, command_id: str) -> None:
    """Start the run again from its retry point, or raise RetryRefused (nothing started)."""
    client = dispatcher.client
    workflow_id = temporal_id(tenant, command.workflow_id)
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise RetryRefused(RejectionCode.NOT_FOUND, f"workflow '{command.workflow_id}' not found") from None
        if error.status in TRANSIENT_RPC:
            raise temporal_unavailable(error) from None
        raise
    memo = await description.memo()
    if memo.get("commandId") == command_id:
        log.info("dispatch.duplicate_retry")  # a redelivery after this very retry started the run
        return
    if command.run_id is not None and description.run_id != command.run_id:
        raise RetryRefused(RejectionCode.CONFLICT, "the run has changed since this retry was asked (another retry won)")
    closed: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id, run_id=description.run_id)
    status = description.status
    if status == WorkflowExecutionStatus.RUNNING and await closes_soon(closed, QUERY_TIMEOUT):
        status = (await closed.describe()).status
    if status == WorkflowExecutionStatus.RUNNING:
        raise RetryRefused(RejectionCode.CONFLICT, "the run has not ended: only a FAILED or TERMINATED run is retried")
    if status not in RETRIABLE_EXECUTIONS:
        name = status.name if status else "unknown"
        raise RetryRefused(RejectionCode.CONFLICT, f"the run ended in Temporal as {name}, which is not retried")
    point = await _retry_point(closed, command.from_node)
    if status == WorkflowExecutionStatus.COMPLETED and point.status != WorkflowStatus.FAILED:
        raise RetryRefused(
            RejectionCode.CONFLICT, f"run is {point.status.value}: only a FAILED or TERMINATED run is retried"
        )
    pinned = await _pinned_input(client, closed)
    if command.from_node is not None and command.from_node not in pinned.definition.states:
        raise RetryRefused(
            RejectionCode.INVALID, f"fromNode: '{command.from_node}' is not a state of the run's definition"
        )
    if point.node is None:
        raise RetryRefused(RejectionCode.CONFLICT, "the run's definition has no startNode to retry from")
    carry = Carry.retrying(point, command_id, command.callback_url, inject_headers() or None)
    run = msgspec.structs.replace(pinned, carry=carry)
    try:
        await dispatcher.start_execution(tenant, workflow_id, run, command_id, memo={"retryOf": description.run_id})
    except WorkflowAlreadyStartedError:
        raise RetryRefused(RejectionCode.CONFLICT, "the run is running again (another retry won)") from None
    except RPCError as error:
        if error.status in TRANSIENT_RPC:
            raise temporal_unavailable(error) from None
        raise
    log.info("dispatch.retried", from_node=point.node, seq=point.seq, skipped_branches=len(point.skip_branches))


async def _retry_point(closed: WorkflowHandle[Any, Any], from_node: str | None) -> RetryPoint:
    try:
        return await closed.query(
            RETRY_QUERY, RetryQuery(from_node=from_node), result_type=RetryPoint, rpc_timeout=QUERY_TIMEOUT
        )
    except WorkflowQueryFailedError as error:
        raise RetryRefused(RejectionCode.CONFLICT, f"the run cannot say where to retry from: {error}") from None
    except RPCError as error:
        if error.status in TRANSIENT_RPC:
            raise temporal_unavailable(error) from None
        raise


async def _pinned_input(client: Client, closed: WorkflowHandle[Any, Any]) -> RunInput:
    """The closed execution's input: the definitions, children and enums the run pinned at start."""
    try:
        async for event in closed.fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [pinned] = await client.data_converter.decode(payloads, [RunInput])
            return pinned  # type: ignore[no-any-return]
    except RPCError as error:
        if error.status in TRANSIENT_RPC:
            raise temporal_unavailable(error) from None
        raise
    raise RetryRefused(RejectionCode.CONFLICT, "the run's history holds no start event")
