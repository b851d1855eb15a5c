"""Fields every node definition has (contract 4.1)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from drift_schema.base import Shape
from drift_schema.ids import DEFINITION_ID_PATTERN, DefinitionId

NODE_ID_PATTERN = DEFINITION_ID_PATTERN
NodeId = DefinitionId


class RetryPolicy(Shape, frozen=True):
    """Retry policy of a node, mapped onto Temporal's retry policy."""

    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    initial_interval_ms: Annotated[int, msgspec.Meta(ge=1)] = 1000
    backoff_coefficient: Annotated[float, msgspec.Meta(ge=1.0)] = 2.0
    max_interval_ms: Annotated[int, msgspec.Meta(ge=1)] | None = None


class NodeBase(Shape, tag_field="type", frozen=True):
    """Common node fields; each node type adds its own and sets its `type` tag."""

    id: NodeId
    name: str | None = None
    version: str | None = None
    parameters: list[str] = msgspec.field(default_factory=list)
    comment: str | None = None
    timeout_ms: Annotated[int, msgspec.Meta(ge=1)] | None = None
    retry: RetryPolicy | None = None
