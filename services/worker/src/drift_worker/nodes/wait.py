"""WAIT: a relative timer, an absolute time, or a named event; all on Temporal timers.

SCHEDULER_WAIT and ABSOLUTE_WAIT hold the run `SCHEDULER_WAITING`; ON_EVENT holds
it `WAITING` until the `event` update names the event, whose payload becomes the
instance's output. An ON_EVENT `timeoutSeconds` that passes fails the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from temporalio import workflow

from drift_schema import expressions
from drift_schema.nodes import AbsoluteWait, OnEventWait, SchedulerWait, WaitNode
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes.base import Interpreter, NodeFailure, Step, Visit, render_field


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


class Wait:
    type: ClassVar[str] = "WAIT"
    announced_by_evaluate: ClassVar[bool] = False

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        """Resolve an ABSOLUTE_WAIT's timestamp expression to an instant (the other kinds have no expressions)."""
        node = task.node
        assert isinstance(node, WaitNode)
        config = node.config
        if not isinstance(config, AbsoluteWait):
            return NodeResult()
        value = render_field("config/timestamp", config.timestamp, bindings, bounds)
        try:
            return NodeResult(output={"until": iso(parse_instant(value))})
        except ValueError as error:
            raise expressions.ExpressionError(f"config/timestamp: {error}") from None

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        node = visit.node
        assert isinstance(node, WaitNode)
        config = node.config
        output: Any
        if isinstance(config, SchedulerWait):
            await run.sleep(visit, config.duration)
            output = {"waitedSeconds": config.duration}
        elif isinstance(config, AbsoluteWait):
            until = await self._instant(run, visit, config)
            await run.sleep(visit, (until - workflow.now()).total_seconds())
            output = {"until": iso(until)}
        elif isinstance(config, OnEventWait):
            output = await run.wait_for_event(visit, config.event, config.timeout_seconds)
        else:  # pragma: no cover - the union is closed
            raise NodeFailure(f"unknown wait type {type(config).__name__}")
        await run.completed(visit, output)
        return Step(next_node=visit.next_node, output=output)

    async def _instant(self, run: Interpreter, visit: Visit, config: AbsoluteWait) -> datetime:
        if expressions.is_expression(config.timestamp):
            result = await run.evaluate(visit)
            return parse_instant(result.output["until"])
        try:
            # A literal needs no activity: parsing it is deterministic.
            return parse_instant(config.timestamp)
        except ValueError as error:
            raise NodeFailure(f"config/timestamp: {error}") from None
