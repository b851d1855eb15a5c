"""`/nodeDefinition`: create, replace, read and publish node definitions."""

from __future__ import annotations

from typing import Annotated, cast

from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter, RawBody

from drift_dsl_store.service import DefinitionService
from drift_dsl_store.store import Kind
from drift_runtime.openapi import json_request
from drift_schema.nodes import NodeDefinition

Version = Annotated[str, QueryParameter(description="`SNAPSHOT`, `LATEST` (highest published) or a number")]
Service = NamedDependency[DefinitionService]
Tenant = NamedDependency[str]


class NodeDefinitionController(Controller):
    """Bodies are read raw and decoded by drift_schema, so that every error carries a JSON pointer."""

    path = "/nodeDefinition"
    tags = ["node definitions"]

    @post(
        "/",
        summary="Create a node definition (its SNAPSHOT)",
        status_code=201,
        opt=json_request(NodeDefinition, "a node definition of any type"),
    )
    async def create_node(self, body: RawBody, service: Service, tenant: Tenant) -> Response[NodeDefinition]:
        node = await service.create(tenant, Kind.NODE, body)
        location = f"/nodeDefinition/{node.id}?version=SNAPSHOT"
        return Response(cast(NodeDefinition, node), status_code=201, headers={"Location": location})

    @put(
        "/",
        summary="Replace the SNAPSHOT of a node definition",
        opt=json_request(NodeDefinition, "the node definition's new SNAPSHOT"),
    )
    async def update_node(self, body: RawBody, service: Service, tenant: Tenant) -> NodeDefinition:
        return cast(NodeDefinition, await service.update(tenant, Kind.NODE, body))

    @get("/{definition_id:str}", summary="Read a node definition at a version")
    async def get_node(
        self, definition_id: FromPath[str], service: Service, tenant: Tenant, version: Version = "LATEST"
    ) -> NodeDefinition:
        return cast(NodeDefinition, await service.get(tenant, Kind.NODE, definition_id, version or "LATEST"))

    @post("/{definition_id:str}/publishNode", summary="Publish the SNAPSHOT as the next version", status_code=200)
    async def publish_node(self, definition_id: FromPath[str], service: Service, tenant: Tenant) -> NodeDefinition:
        return cast(NodeDefinition, await service.publish(tenant, Kind.NODE, definition_id))
