"""OpenAPI schema generation for drift_schema's Structs.

Litestar 2.25's Struct plugin tests each field default with `default not in {...}`,
which raises on unhashable defaults such as drift_schema's `View()` (it holds a
list). This plugin is the same generation with an identity test, and it leaves
non-scalar defaults out of the document.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# Private module, but the only way to reuse the stock behaviour; pinned by litestar>=2.13,<3 in practice.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import Schema
from litestar.plugins.core._msgspec import kwarg_definition_from_field
from litestar.types.empty import Empty
from litestar.typing import FieldDefinition

_SCALARS = (str, int, float, bool)


def _documented_default(default: Any) -> Any:
    if default is msgspec.NODEFAULT or default is msgspec.UNSET or default is None:
        return Empty
    return default if isinstance(default, _SCALARS) else Empty


class DriftStructSchemaPlugin(StructSchemaPlugin):
    """StructSchemaPlugin that tolerates unhashable defaults."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        type_hints = field_definition.get_type_hints(include_extras=True, resolve_generics=True)
        info: Any = msgspec.inspect.type_info(field_definition.type_)
        properties: dict[str, FieldDefinition] = {}
        for field in info.fields:
            extra: dict[str, Any] = {}
            if kwarg_definition := kwarg_definition_from_field(field)[0]:
                extra["kwarg_definition"] = kwarg_definition
            properties[field.encode_name] = FieldDefinition.from_annotation(
                annotation=type_hints[field.name],
                name=field.encode_name,
                default=_documented_default(field.default),
                **extra,
            )
        required = [field.encode_name for field in info.fields if self._is_field_required(field=field)]
        if info.tag_field:
            properties[info.tag_field] = FieldDefinition.from_annotation(Literal[info.tag])
            required.append(info.tag_field)
        return schema_creator.create_component_schema(  # type: ignore[no-any-return]
            field_definition, required=sorted(required), property_fields=properties
        )
