"""Retry (contract 8.2), the gateway's half: what can be refused before a command is sent.

The dispatcher decides (it holds the run's lock and starts the new execution); the gateway
answers at once what it can see without changing anything: an unknown run (404), a run that has
not ended (409) and an unknown `fromNode` (422 with the pointer `/fromNode`), so that an async
retry is not answered 202 only to be refused by webhook. The closed execution's run id rides in
the command: the dispatcher refuses the retry if the run changed since (another retry won).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import (
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from drift_gateway.errors import Conflict, Invalid, NotFound, Unavailable
from drift_gateway.runtime import Runtime
from drift_runtime.temporal import RETRIABLE_EXECUTIONS, closes_soon
from drift_schema.api import ProblemError
from drift_schema.run import RunInput, temporal_id

log = structlog.get_logger("drift.gateway")

RPC_TIMEOUT = timedelta(seconds=5)
FROM_NODE_POINTER = "/fromNode"


def unknown_from_node(from_node: str) -> Invalid:
    return Invalid(
        "fromNode is not a state of the run's definition",
        errors=[
            ProblemError(pointer=FROM_NODE_POINTER, message=f"'{from_node}' is not a state of the run's definition")
        ],
    )


async def closed_run(runtime: Runtime, tenant: str, workflow_id: str, from_node: str | None) -> str:
    """The run id of the run's closed execution, after the checks above; raises the problem otherwise."""
    handle = runtime.temporal.get_workflow_handle(temporal_id(tenant, workflow_id))
    try:
        description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"workflow '{workflow_id}' not found") from None
        raise Unavailable("temporal is unavailable; retry shortly") from None
    if description.status == WorkflowExecutionStatus.RUNNING:
        description = await _closing(handle)
    if description.status not in RETRIABLE_EXECUTIONS:
        name = description.status.name if description.status else "unknown"
        raise Conflict(f"the run ended in Temporal as {name}, which is not retried")
    if from_node is not None:
        closed: WorkflowHandle[Any, Any] = runtime.temporal.get_workflow_handle(handle.id, run_id=description.run_id)
        states = await _states(runtime, closed)
        if states is not None and from_node not in states:
            raise unknown_from_node(from_node)
    return description.run_id


async def _closing(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionDescription:
    """A run that has just FAILED closes once its post-completion nodes are done: wait that long, no more."""
    if await closes_soon(handle, RPC_TIMEOUT):
        with contextlib.suppress(RPCError):
            return await handle.describe(rpc_timeout=RPC_TIMEOUT)
    raise Conflict("the run has not ended: only a FAILED or TERMINATED run is retried")


async def _states(runtime: Runtime, closed: WorkflowHandle[Any, Any]) -> set[str] | None:
    """The state names of the definition the closed execution pinned; None when its history cannot say."""
    try:
        async for event in closed.fetch_history_events(page_size=1, rpc_timeout=RPC_TIMEOUT):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [pinned] = await runtime.temporal.data_converter.decode(payloads, [RunInput])
            return set(pinned.definition.states)
    except RPCError as error:
        log.info("gateway.retry_history_unread", error=error.message)
    return None
