"""Activities of the interpreter: node evaluation and event publishing, with injected clients."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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
from drift_schema import codec, expressions, ids, subjects
from drift_schema.events import NodeEvent
from drift_schema.nodes import node_type
from drift_worker.announcer import Acknowledgements, Batch
from drift_worker.evaluator import (
    NODE,
    EvaluationTimeout,
    EvaluatorBusy,
    EvaluatorPool,
)
from drift_worker.model import (
    NODE_FAILED,
    EmitBatch,
    NodeResult,
    NodeTask,
    SegmentResult,
    SegmentTask,
    SegmentVisit,
)
from drift_worker.nodes import NODE_KINDS
from drift_worker.segments import run_end

log = structlog.get_logger("drift.worker")

DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024
# The evaluation's own deadline is the node's timeoutMs, else a little shorter than Temporal's: a local
# activity that times out is retried (its retry policy must outlast a NATS outage), so a slow node must
# fail here rather than time out.
DEADLINE_SHARE = 0.9
SEGMENT_ACTIVITY = "drift.evaluate_segment"
# A status event carries the run's context up to this size; NATS refuses payloads over 1 MiB by default.
MAX_EVENT_CONTEXT_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a node may compute: expression bounds and the size of one output."""

    bounds: expressions.Bounds = expressions.DEFAULT_BOUNDS
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def failure_message(instance: str, error: Exception) -> str:
    """What a node's failed evaluation says (an expression error, a busy pool, a time limit passed)."""
    if isinstance(error, EvaluatorBusy):
        return (
            f"evaluating '{instance}' waited {error.args[0]} ms for an evaluator: "
            "this tenant's share of the evaluators stayed busy"
        )
    if isinstance(error, EvaluationTimeout):
        # Several expressions, each within its bound, may still add up past the node's time limit.
        return f"evaluating '{instance}' took longer than its time limit of {error.args[0]} ms"
    if isinstance(error, expressions.ExpressionError):
        return error.message
    return str(error)


def node_failed(message: str) -> ApplicationError:
    """A failure no retry can fix; carries the attempt so the workflow can report it."""
    return ApplicationError(message, activity.info().attempt, type=NODE_FAILED, non_retryable=True)


@contextlib.contextmanager
def failing_node(work: str) -> Iterator[None]:
    """An expression error or a passed time limit inside the block fails the node (see `node_failed`).

    `work` names what took too long in the time limit's message, e.g. "evaluating 'output'".
    """
    try:
        yield
    except expressions.ExpressionError as error:
        raise node_failed(error.message) from None
    except EvaluationTimeout as timeout:
        raise node_failed(f"{work} took longer than its time limit of {timeout.args[0]} ms") from None


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
    """Evaluates nodes in the evaluator pool (bounded in time and memory) and announces what happened on NATS."""

    def __init__(
        self,
        js: JetStreamContext,
        limits: Limits | expressions.Bounds = Limits(),
        pool: EvaluatorPool | None = None,
    ) -> None:
        self.js = js
        self.acks = Acknowledgements(js)
        self.limits = limits if isinstance(limits, Limits) else Limits(bounds=limits)
        self.pool = pool if pool is not None else EvaluatorPool()

    @property
    def bounds(self) -> expressions.Bounds:
        return self.limits.bounds

    def bounds_for(self, task: NodeTask) -> expressions.Bounds:
        """The expression bounds of one visit: a node's `timeoutMs` also caps each expression's time."""
        timeout_ms = task.node.timeout_ms
        if timeout_ms and timeout_ms < self.bounds.timeout_ms:
            return replace(self.bounds, timeout_ms=timeout_ms)
        return self.bounds

    @activity.defn(name="drift.evaluate_node")
    async def evaluate_node(self, task: NodeTask) -> NodeResult:
        """Evaluate one node visit; a failing expression fails the node, not the activity's retries.

        The workflow announces failures (once, after any retries), so only success is published here.
        """
        deadline = activity.info().start_to_close_timeout
        limit_ms = task.node.timeout_ms or (round(deadline.total_seconds() * 1000 * DEADLINE_SHARE) if deadline else 0)
        try:
            # In an evaluator process: a runaway is killed at its deadline, its memory is bounded.
            result = await self.pool.evaluate(NODE, task, self.bounds_for(task), self.limits.max_output_bytes, limit_ms)
        except (expressions.ExpressionError, EvaluationTimeout) as error:
            raise node_failed(failure_message(task.instance, error)) from None
        if NODE_KINDS[node_type(task.node)].announced_by_evaluate:
            await publish_node_event(self.js, task, "COMPLETED", result.output)
        return result

    @activity.defn(name=SEGMENT_ACTIVITY)
    async def evaluate_segment(self, task: SegmentTask) -> SegmentResult:
        """Evaluate a segment of pure nodes (`drift_worker.segments`) and announce each completed visit.

        Events are published as visits complete, without awaiting each acknowledgement; all of them are
        awaited before the activity returns, so every event is stored before the run moves on. A failed
        node ends the segment and is answered (the workflow announces it, as for one node); a publish that
        fails fails the attempt, and the retried segment publishes under the same event ids.
        """
        announcements = Batch(self.acks)
        attempt = activity.info().attempt
        started = _now()

        def announce(visit: SegmentVisit) -> None:
            nonlocal started
            finished = _now()
            number = task.first_visit + len(announcements)
            node = task.states[visit.instance].node_definition
            assert node is not None
            announcements.send(
                NodeEvent(
                    event_id=ids.node_event_id(task.event_prefix, number),
                    workflow_id=task.workflow_id,
                    tenant=task.tenant,
                    instance_name=visit.instance,
                    node_type=node_type(node),
                    status="COMPLETED",
                    output=visit.result.output,
                    attempt=attempt,
                    started_at=started,
                    finished_at=finished,
                )
            )
            started = finished

        if task.lead is not None:
            # The status event the run deferred to this activity (RUNNING at its start): before any node event.
            await self.publish_batch(task.lead)
        # The evaluator process needs no final status event (nor the whole context it carries).
        walked = task if task.end is None else msgspec.structs.replace(task, end=None)
        outcome = await self.pool.evaluate_segment(walked, self.bounds, self.limits.max_output_bytes, announce)
        for event in await announcements.settled():
            observe_node(event)
        if outcome.failed is None and (end := run_end(task, outcome.visits)) is not None:
            # The run ends with this segment: its final status goes after every node event is stored.
            await self.publish_batch(end)
            return SegmentResult(visits=outcome.visits, attempt=attempt, ended=True, finished_at=_now())
        error = failure_message(outcome.failed, outcome.failure) if outcome.failed and outcome.failure else None
        return SegmentResult(
            visits=outcome.visits, failed=outcome.failed, error=error, attempt=attempt, finished_at=_now()
        )

    @activity.defn(name="drift.emit")
    async def emit(self, batch: EmitBatch) -> None:
        """Publish node events, then the status event; ids make a retried publish a no-op.

        After a resume or an event the publishes continue that command's trace (the SDK only links
        an update handler to its caller), so one resume is one trace from the gateway to its answer.
        """
        await self.publish_batch(batch)

    async def publish_batch(self, batch: EmitBatch) -> None:
        """What `emit` publishes (also a segment's leading status event), each publish acknowledged."""
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
