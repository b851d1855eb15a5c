"""WAIT node: a timer, an absolute time, or a named external event."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from drift_schema.base import Shape
from drift_schema.nodes.common import Edge, NodeBase


class SchedulerWait(Shape, tag_field="waitType", tag="SCHEDULER_WAIT", frozen=True):
    duration: Annotated[float, msgspec.Meta(ge=0)]


class AbsoluteWait(Shape, tag_field="waitType", tag="ABSOLUTE_WAIT", frozen=True):
    timestamp: Any


class OnEventWait(Shape, tag_field="waitType", tag="ON_EVENT", frozen=True):
    event: str
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] | None = None


WaitConfig = SchedulerWait | AbsoluteWait | OnEventWait


class WaitNode(NodeBase, tag="WAIT", kw_only=True, frozen=True):
    config: WaitConfig

    ends_run: ClassVar[bool] = False

    def edges(self) -> list[Edge]:
        """None of its own: once the wait is over, the run goes on along its state's `nextNode`."""
        return []
