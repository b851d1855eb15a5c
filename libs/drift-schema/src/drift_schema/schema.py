"""JSON Schema generated from the Structs, never written by hand."""

from __future__ import annotations

from typing import Any

import msgspec

from drift_schema.nodes import NodeDefinition
from drift_schema.workflow import Bundle, WorkflowDefinition


def json_schemas() -> dict[str, Any]:
    """Schemas of the definition shapes, keyed by name."""
    schemas, components = msgspec.json.schema_components(
        [NodeDefinition, WorkflowDefinition, Bundle], ref_template="#/$defs/{name}"
    )
    names = ["NodeDefinition", "WorkflowDefinition", "Bundle"]
    return {name: {**schema, "$defs": components} for name, schema in zip(names, schemas, strict=True)}
