"""`/nodeTypes`: the JSON Schema of every node type, generated from drift_schema's Structs.

Editors (the Studio's inspector) build their forms from it, so a field added to a Struct shows up
in the forms without a hand-written schema to keep in step.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from litestar import Controller, Response, get

from drift_schema.nodes import NODE_TYPES
from drift_schema.workflow import WorkflowDefinition


@cache
def node_type_schemas() -> dict[str, Any]:
    """`{"types": {TYPE: schema}, "workflowDefinition": schema, "$defs": {...}}`, built once."""
    kinds = sorted(NODE_TYPES)
    schemas, components = msgspec.json.schema_components(
        [*(NODE_TYPES[kind] for kind in kinds), WorkflowDefinition], ref_template="#/$defs/{name}"
    )
    document: dict[str, Any] = {
        "types": dict(zip(kinds, schemas[:-1], strict=True)),
        "workflowDefinition": schemas[-1],
        "$defs": components,
    }
    return document


class NodeTypesController(Controller):
    """The node types' JSON Schema (the same for every tenant; still behind the bearer key)."""

    path = "/nodeTypes"
    tags = ["node types"]

    @get("/", summary="JSON Schema of every node type and of a workflow definition")
    async def node_types(self) -> Response[dict[str, Any]]:
        return Response(node_type_schemas(), headers={"Cache-Control": "max-age=300"})
