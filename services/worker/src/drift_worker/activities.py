"""Activities of the interpreter: node evaluation and event publishing, with injected clients."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from nats.js import JetStreamContext
from temporalio import activity
from temporalio.exceptions import ApplicationError

from drift_runtime import metrics
from drift_runtime.messaging import publish
from drift_runtime.telemetry import continued_from
from drift_schema import codec, expressions, subjects
from drift_schema.events import NodeEvent
from drift_schema.nodes import node_type
from drift_worker.model import NODE_FAILED, EmitBatch, NodeResult, NodeTask
from drift_worker.nodes import NODE_KINDS
from drift_worker.nodes.base import render_field

log = structlog.get_logger("drift.worker")

DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024
# The evaluation's own deadline is the node's timeoutMs, else a little shorter than Temporal's: a local
# activity that times out is retried (its retry policy must outlast a NATS outage), so a slow node must
# fail here rather than time out.
DEADLINE_SHARE = 0.9
# A status event carries the run's context up to this size; NATS refuses payloads over 1 MiB by default.
MAX_EVENT_CONTEXT_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a node may compute: expression bounds and the size of one output."""

    bounds: expressions.Bounds = expressions.DEFAULT_BOUNDS
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES


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
    params = {
        name: render_field(f"parameters/{name}", value, shared, bounds) for name, value in task.parameters.items()
    }
    return {**shared, "params": params}


def check_output_size(instance: str, output: Any, limit: int) -> None:
    """Refuse an output too large to carry in the run's context (and in every later activity's input)."""
    size = len(msgspec.json.encode(output))
    if size > limit:
        raise expressions.ExpressionError(
            f"output: the output of '{instance}' is {size} bytes, over the limit of {limit} bytes per node output"
        )


def node_failed(message: str) -> ApplicationError:
    """A failure no retry can fix; carries the attempt so the workflow can report it."""
    return ApplicationError(message, activity.info().attempt, type=NODE_FAILED, non_retryable=True)


async def publish_node_event(
    js: JetStreamContext, task: NodeTask, status: str, output: Any, error: str | None = None
) -> None:
    """Announce a node visit's outcome; its id is the visit's, so a retried publish is deduplicated."""
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
    if await publish(js, subjects.node_events(task.tenant, task.workflow_id), event, event.event_id):
        observe_node(event)


def observe_node(event: NodeEvent) -> None:
    """`drift_node_seconds` for one announced visit; called on the first publish only (not on a duplicate)."""
    if not event.started_at or not event.finished_at:
        return
    try:
        seconds = (datetime.fromisoformat(event.finished_at) - datetime.fromisoformat(event.started_at)).total_seconds()
    except ValueError:
        return
    metrics.node_seconds.labels(event.node_type, event.status).observe(max(0.0, seconds))


class NodeActivities:
    """Evaluates nodes off the workflow thread and announces what happened on NATS."""

    def __init__(self, js: JetStreamContext, limits: Limits | expressions.Bounds = Limits()) -> None:
        self.js = js
        self.limits = limits if isinstance(limits, Limits) else Limits(bounds=limits)

    @property
    def bounds(self) -> expressions.Bounds:
        return self.limits.bounds

    def bounds_for(self, task: NodeTask) -> expressions.Bounds:
        """The expression bounds of one visit: a node's `timeoutMs` also caps each expression's time."""
        timeout_ms = task.node.timeout_ms
        if timeout_ms and timeout_ms < self.bounds.timeout_ms:
            return replace(self.bounds, timeout_ms=timeout_ms)
        return self.bounds

    def _evaluate(self, task: NodeTask) -> NodeResult:
        kind = NODE_KINDS[node_type(task.node)]
        bounds = self.bounds_for(task)
        result = kind.evaluate(task, bindings_for(task, bounds), bounds)
        check_output_size(task.instance, result.output, self.limits.max_output_bytes)
        return result

    @activity.defn(name="drift.evaluate_node")
    async def evaluate_node(self, task: NodeTask) -> NodeResult:
        """Evaluate one node visit; a failing expression fails the node, not the activity's retries.

        The workflow announces failures (once, after any retries), so only success is published here.
        """
        deadline = activity.info().start_to_close_timeout
        limit_ms = task.node.timeout_ms or (round(deadline.total_seconds() * 1000 * DEADLINE_SHARE) if deadline else 0)
        try:
            # Expressions are CPU-bound and bounded in time: keep them off the event loop.
            async with asyncio.timeout(limit_ms / 1000 if limit_ms else None):
                result = await asyncio.to_thread(self._evaluate, task)
        except expressions.ExpressionError as error:
            raise node_failed(error.message) from None
        except TimeoutError:
            # Several expressions, each within its bound, may still add up past the node's time limit.
            raise node_failed(
                f"evaluating '{task.instance}' took longer than its time limit of {limit_ms} ms"
            ) from None
        if NODE_KINDS[node_type(task.node)].announced_by_evaluate:
            await publish_node_event(self.js, task, "COMPLETED", result.output)
        return result

    @activity.defn(name="drift.emit")
    async def emit(self, batch: EmitBatch) -> None:
        """Publish node events, then the status event; ids make a retried publish a no-op.

        After a resume or an event the publishes continue that command's trace (the SDK only links
        an update handler to its caller), so one resume is one trace from the gateway to its answer.
        """
        with continued_from(batch.trace_context):
            for node_event in batch.nodes:
                subject = subjects.node_events(node_event.tenant, node_event.workflow_id)
                if await publish(self.js, subject, node_event, node_event.event_id):
                    observe_node(node_event)
            if batch.status is not None:
                status = batch.status
                if status.context is not None and len(codec.encode(status.context)) > MAX_EVENT_CONTEXT_BYTES:
                    # Past NATS's payload limit the publish would never succeed: the notifier queries the run.
                    status = msgspec.structs.replace(status, context=None, context_omitted=True)
                subject = subjects.workflow_events(status.tenant, status.workflow_id)
                await publish(self.js, subject, status, status.event_id)
                log.info(
                    "worker.status_published",
                    workflow_id=status.workflow_id,
                    tenant=status.tenant,
                    status=status.workflow_status,
                    seq=status.seq,
                )
