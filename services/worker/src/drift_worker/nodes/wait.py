"""WAIT: a relative timer, an absolute time, or a named event; all on Temporal timers.

SCHEDULER_WAIT and ABSOLUTE_WAIT hold the run `SCHEDULER_WAITING`; ON_EVENT holds
it `WAITING` until the `event` update names the event, whose payload becomes the
instance's output. An ON_EVENT `timeoutSeconds` that passes fails the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from temporalio import workflow

from drift_schema import expressions
from drift_schema.nodes import AbsoluteWait, OnEventWait, SchedulerWait, WaitNode
from drift_worker import patches
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import Interpreter, NodeFailure, Step, Visit, WorkflowNode, node_of, render_field


def parse_instant(value: Any) -> datetime:
    """An RFC 3339 timestamp as an aware datetime; one without an offset is taken as UTC."""
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 timestamp, got {type(value).__name__}")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
    except ValueError:
        raise ValueError(f"'{value}' is not an RFC 3339 timestamp") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """A UTC timestamp with milliseconds and a `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Wait(WorkflowNode):
    type = "WAIT"

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        """Resolve an ABSOLUTE_WAIT's timestamp expression to an instant (the other kinds have no expressions)."""
        node = node_of(task.node, WaitNode)
        config = node.config
        if not isinstance(config, AbsoluteWait):
            return NodeResult()
        value = render_field("config/timestamp", config.timestamp, bindings, bounds)
        try:
            return NodeResult(output={"until": iso(parse_instant(value))})
        except ValueError as error:
            raise expressions.ExpressionError(f"config/timestamp: {error}") from None

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        node = node_of(visit.node, WaitNode)
        config = node.config
        output: Any
        # A `timeoutMs` shorter than the wait fails the node once it passes (patched in: histories recorded
        # while WAIT ignored timeoutMs replay as they ran).
        limit = node.timeout_ms / 1000 if node.timeout_ms is not None and run.patched(patches.WAIT_TIMEOUT) else None
        if isinstance(config, SchedulerWait):
            await self._sleep(run, visit, config.duration, limit)
            output = {"waitedSeconds": config.duration}
        elif isinstance(config, AbsoluteWait):
            until = await self._instant(run, visit, config)
            await self._sleep(run, visit, (until - workflow.now()).total_seconds(), limit)
            output = {"until": iso(until)}
        elif isinstance(config, OnEventWait):
            timeout = config.timeout_seconds
            if limit is not None and (timeout is None or limit < timeout):
                try:
                    output = await run.wait_for_event(visit, config.event, limit)
                except NodeFailure:
                    raise NodeFailure(
                        f"event '{config.event}' did not arrive within timeoutMs ({node.timeout_ms} ms)"
                    ) from None
            else:
                output = await run.wait_for_event(visit, config.event, timeout)
        else:  # pragma: no cover - the union is closed
            raise NodeFailure(f"unknown wait type {type(config).__name__}")
        await run.completed(visit, output)
        return Step(next_node=visit.next_node, output=output)

    async def _sleep(self, run: Interpreter, visit: Visit, seconds: float, limit: float | None) -> None:
        """Sleep `seconds`; NodeFailure after `limit` seconds when the wait is longer than that."""
        if limit is None or seconds <= limit:
            await run.sleep(visit, seconds)
            return
        await run.sleep(visit, limit)
        node = visit.node
        raise NodeFailure(
            f"the wait of {seconds:g} seconds is longer than its timeoutMs ({node.timeout_ms} ms): "
            f"failed after {limit:g} seconds"
        )

    async def _instant(self, run: Interpreter, visit: Visit, config: AbsoluteWait) -> datetime:
        if expressions.is_expression(config.timestamp):
            result = await run.evaluate(visit)
            return parse_instant(result.output["until"])
        try:
            # A literal needs no activity: parsing it is deterministic.
            return parse_instant(config.timestamp)
        except ValueError as error:
            raise NodeFailure(f"config/timestamp: {error}") from None
