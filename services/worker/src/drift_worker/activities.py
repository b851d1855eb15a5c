"""Activities of the interpreter: node evaluation and event publishing, with injected clients."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from drift_runtime.messaging import publish
from drift_schema import expressions, subjects
from drift_schema.events import NodeEvent
from drift_schema.nodes import node_type
from nats.js import JetStreamContext
from temporalio import activity
from temporalio.exceptions import ApplicationError

from drift_worker.model import NODE_FAILED, EmitBatch, NodeResult, NodeTask
from drift_worker.nodes import NODE_KINDS

log = structlog.get_logger("drift.worker")

# Nodes whose completion is announced later, by the workflow, once the run moves past them.
_COMPLETED_LATER = frozenset({"INSTRUCTION"})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bindings_for(task: NodeTask, bounds: expressions.Bounds) -> dict[str, Any]:
    """The variables of contract 3, with this instance's parameters resolved first."""
    shared = {
        "global": task.context,
        "workflow": {
            "id": task.workflow_id,
            "tenant": task.tenant,
            "definitionId": task.definition_id,
            "definitionVersion": task.definition_version,
        },
        "enums": task.enums,
    }
    params = {name: expressions.render(value, shared, bounds) for name, value in task.parameters.items()}
    return {**shared, "params": params}


class NodeActivities:
    """Evaluates nodes off the workflow thread and announces what happened on NATS."""

    def __init__(self, js: JetStreamContext, bounds: expressions.Bounds) -> None:
        self.js = js
        self.bounds = bounds

    def _evaluate(self, task: NodeTask) -> NodeResult:
        kind = NODE_KINDS[node_type(task.node)]
        return kind.evaluate(task, bindings_for(task, self.bounds), self.bounds)

    @activity.defn(name="drift.evaluate_node")
    async def evaluate_node(self, task: NodeTask) -> NodeResult:
        """Evaluate one node visit; a failing expression fails the node, not the activity's retries."""
        kind = node_type(task.node)
        try:
            # Expressions are CPU-bound and bounded in time: keep them off the event loop.
            result = await asyncio.to_thread(self._evaluate, task)
        except expressions.ExpressionError as error:
            await self._node_event(task, "FAILED", None, error.message)
            raise ApplicationError(error.message, type=NODE_FAILED, non_retryable=True) from None
        if kind not in _COMPLETED_LATER:
            await self._node_event(task, "COMPLETED", result.output, None)
        return result

    async def _node_event(self, task: NodeTask, status: str, output: Any, error: str | None) -> None:
        event = NodeEvent(
            event_id=task.event_id,
            workflow_id=task.workflow_id,
            tenant=task.tenant,
            instance_name=task.instance,
            node_type=node_type(task.node),
            status=status,
            output=output,
            error=error,
            attempt=activity.info().attempt,
            started_at=task.started_at,
            finished_at=_now(),
        )
        await publish(self.js, subjects.node_events(task.tenant, task.workflow_id), event, event.event_id)

    @activity.defn(name="drift.emit")
    async def emit(self, batch: EmitBatch) -> None:
        """Publish node events, then the status event; ids make a retried publish a no-op."""
        for node_event in batch.nodes:
            subject = subjects.node_events(node_event.tenant, node_event.workflow_id)
            await publish(self.js, subject, node_event, node_event.event_id)
        if batch.status is not None:
            status = batch.status
            await publish(
                self.js, subjects.workflow_events(status.tenant, status.workflow_id), status, status.event_id
            )
            log.info(
                "worker.status_published",
                workflow_id=status.workflow_id,
                tenant=status.tenant,
                status=status.workflow_status,
                seq=status.seq,
            )
