"""OpenAPI documents generated from drift_schema's Structs: request bodies and Struct schemas.

Request bodies in the documents of handlers that read their body raw:

Drift's handlers decode their bodies themselves (`drift_schema.codec`: errors with JSON pointers,
a depth check before parsing), so they take the raw request, and Litestar, which documents a body
only from a `data` parameter, would leave every write operation without a `requestBody`. A handler
names its body's type in its `opt` (`opt=json_request(StartRequest)`); `document_request_bodies`
makes the app's OpenAPI generation write that type's schema as the operation's `requestBody`, with
the same schema generator (and so the same shared components) as every response.

Struct schemas: Litestar 2.25's Struct plugin tests each field default with `default not in {...}`,
which raises on unhashable defaults such as drift_schema's `View()` (it holds a list).
`DriftStructSchemaPlugin` is the same generation with an identity test, and it leaves non-scalar
defaults out of the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from litestar import Litestar
from litestar._openapi.datastructures import OpenAPIContext
from litestar._openapi.path_item import create_path_item_for_route, merge_path_item_operations
from litestar._openapi.plugin import OpenAPIPlugin
from litestar._openapi.schema_generation import SchemaCreator

# Private module, but the only way to reuse the stock behaviour; pinned by litestar>=2.13,<3 in practice.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import OpenAPI, OpenAPIMediaType, PathItem, RequestBody, Schema
from litestar.plugins.core._msgspec import kwarg_definition_from_field
from litestar.types.empty import Empty
from litestar.typing import FieldDefinition

REQUEST_BODY = "drift_request_body"
"""The `opt` key naming a handler's documented request body."""


@dataclass(frozen=True)
class JsonBody:
    """A raw-read JSON request body, documented as `annotation` (a Struct, a union of them, any type)."""

    annotation: Any
    description: str | None = None
    required: bool = True


def json_request(annotation: Any, description: str | None = None, *, required: bool = True) -> dict[str, Any]:
    """A handler's `opt=` documenting its raw JSON body as `annotation`."""
    return {REQUEST_BODY: JsonBody(annotation, description, required)}


def _add_bodies(context: OpenAPIContext, route: Any, path_item: PathItem) -> None:
    for handler in route.route_handlers:
        body = handler.opt.get(REQUEST_BODY)
        if not isinstance(body, JsonBody):
            continue
        creator = SchemaCreator.from_openapi_context(context, prefer_alias=True)
        schema = creator.for_field_definition(FieldDefinition.from_annotation(body.annotation))
        for method in handler.http_methods:
            operation = getattr(path_item, method.lower(), None)
            if operation is not None:
                operation.request_body = RequestBody(
                    content={"application/json": OpenAPIMediaType(schema=schema)},
                    description=body.description,
                    required=body.required,
                )


class _DocumentedBodies(OpenAPIPlugin):
    """Litestar's OpenAPI plugin whose build also writes the `json_request` bodies."""

    __slots__ = ()

    def _build_openapi(self) -> OpenAPI:
        return _build_openapi(self)


def _build_openapi(self: OpenAPIPlugin) -> OpenAPI:
    # Litestar's own build (OpenAPIPlugin._build_openapi), with the bodies added to each path item
    # before the shared components are collected.
    openapi_config = self.openapi_config
    if openapi_config.create_examples:
        from litestar._openapi.schema_generation.examples import ExampleFactory

        ExampleFactory.seed_random(openapi_config.random_seed)
    openapi = openapi_config.to_openapi_schema()
    context = OpenAPIContext(openapi_config=openapi_config, plugins=self.app.plugins.openapi)
    path_items: dict[str, PathItem] = {}
    for route in self.included_routes.values():
        path = route.path_format or "/"
        path_item = create_path_item_for_route(context, route)
        _add_bodies(context, route, path_item)
        if existing := path_items.get(path):
            path_item = merge_path_item_operations(existing, path_item, for_path=path)
        path_items[path] = path_item
    openapi.paths = path_items
    openapi.components.schemas = context.schema_registry.generate_components_schemas()
    return openapi


def document_request_bodies(app: Litestar) -> Litestar:
    """`app`, its OpenAPI document declaring the `json_request` bodies of its handlers."""
    # Litestar makes its plugin itself (no option to pass a subclass); same slots, so the class can change.
    plugin = app.plugins.get(OpenAPIPlugin)
    plugin.__class__ = _DocumentedBodies
    return app


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


__all__ = ["REQUEST_BODY", "DriftStructSchemaPlugin", "JsonBody", "document_request_bodies", "json_request"]
