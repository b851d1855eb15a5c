"""INSTRUCTION node: shows a view of widgets and waits for a person's selections."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from drift_schema.base import Shape
from drift_schema.nodes.common import Edge, NodeBase


class Tags(Shape, frozen=True):
    values: list[str] = msgspec.field(default_factory=list)


class Instruction(Shape, frozen=True):
    template_id: str | None = None
    template_variables: Any = None


class PossibleValue(Shape, frozen=True):
    value: Any
    display_value: Any = None
    meta_data: Any = None


class Option(Shape, frozen=True):
    """A widget of a view."""

    id: str
    parent_id: str | None = None
    description: Any = None
    tags: Tags | None = None
    instructions: list[Instruction] | None = None
    possible_values: list[PossibleValue] | None = None
    possible_dependent_values: dict[str, Option] | None = None


class View(Shape, frozen=True):
    """`inputOptions` is a list of Options or one expression that yields such a list."""

    layout_id: str | None = None
    input_options: list[Option] | str = msgspec.field(default_factory=list)


class InstructionNode(NodeBase, tag="INSTRUCTION", frozen=True):
    view: View = View()
    disposition: Any = None

    ends_run: ClassVar[bool] = False

    def edges(self) -> list[Edge]:
        """None of its own: once answered, the run goes on along its state's `nextNode`."""
        return []
