"""`/workflowDefinition`: create, replace, read, publish, activate, list versions and draw workflows."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Annotated, cast

from litestar import Controller, Response, get, post, put
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import FromPath, QueryParameter, RawBody

from drift_dsl_store.errors import Invalid
from drift_dsl_store.render import TooLargeToDraw, check_drawable, mermaid, png, svg
from drift_dsl_store.service import Activation, DefinitionService
from drift_dsl_store.store import Kind
from drift_runtime.openapi import json_request
from drift_schema.api import ProblemError
from drift_schema.workflow import VersionInfo, WorkflowDefinition

Version = Annotated[str, QueryParameter(description="`SNAPSHOT`, `LATEST` (highest published), `ACTIVE` or a number")]
Enrich = Annotated[
    bool, QueryParameter(name="enrichNodeDefinition", description="inline each referenced node at its version")
]
Format = Annotated[
    str,
    QueryParameter(description="`svg` (default), `png` or `mermaid`", schema_extra={"enum": ["svg", "png", "mermaid"]}),
]
Service = NamedDependency[DefinitionService]
Tenant = NamedDependency[str]
SVG = "image/svg+xml"
MERMAID = "text/plain; charset=utf-8"
DISCONNECTED_HEADER = "X-Drift-Disconnected-States"
PNG = "image/png"
FORMATS = ("svg", "png", "mermaid")


DISCONNECTED_DOC = ResponseHeader(
    name=DISCONNECTED_HEADER,
    # Only documented (the handlers set the header): a string value makes its OpenAPI schema `string`.
    value='["state"]',
    description="JSON array of the states no edge reaches (allowed; run them with the disconnected-node route)",
    documentation_only=True,
)


@dataclass
class TreeViewOperation(Operation):
    """The tree view answers in one of three media types; Litestar documents only the handler's one."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = {
                SVG: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
                PNG: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)),
                MERMAID.split(";")[0]: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            }


async def _answer(
    service: DefinitionService,
    tenant: str,
    definition: object,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response[WorkflowDefinition]:
    """The workflow, with its disconnected states listed in a header (ASCII JSON, so any name is safe)."""
    workflow = cast(WorkflowDefinition, definition)
    detached = await service.disconnected_states(tenant, workflow)
    listed = {DISCONNECTED_HEADER: json.dumps(detached)} if detached else {}
    return Response(workflow, status_code=status_code, headers={**(headers or {}), **listed})


class WorkflowDefinitionController(Controller):
    """Bodies are read raw and decoded by drift_schema, so that every error carries a JSON pointer."""

    path = "/workflowDefinition"
    tags = ["workflow definitions"]

    @post(
        "/",
        summary="Create a workflow definition (its SNAPSHOT)",
        status_code=201,
        response_headers=[DISCONNECTED_DOC],
        opt=json_request(WorkflowDefinition, "a workflow definition; its nodes inline or referenced"),
    )
    async def create_workflow(self, body: RawBody, service: Service, tenant: Tenant) -> Response[WorkflowDefinition]:
        workflow = await service.create(tenant, Kind.WORKFLOW, body)
        location = f"/workflowDefinition/{workflow.id}?version=SNAPSHOT"
        return await _answer(service, tenant, workflow, status_code=201, headers={"Location": location})

    @put(
        "/",
        summary="Replace the SNAPSHOT of a workflow definition",
        response_headers=[DISCONNECTED_DOC],
        opt=json_request(WorkflowDefinition, "the workflow definition's new SNAPSHOT"),
    )
    async def update_workflow(self, body: RawBody, service: Service, tenant: Tenant) -> Response[WorkflowDefinition]:
        return await _answer(service, tenant, await service.update(tenant, Kind.WORKFLOW, body))

    @get(
        "/treeView/{definition_id:str}",
        summary="Draw the graph (svg, png or mermaid)",
        media_type=SVG,
        operation_class=TreeViewOperation,
    )
    async def tree_view(
        self,
        definition_id: FromPath[str],
        service: Service,
        tenant: Tenant,
        version: Version = "LATEST",
        format: Format = "svg",
    ) -> Response[str | bytes]:
        drawing = format.strip().lower()
        if drawing not in FORMATS:
            message = f"unknown format '{format}'; use svg, png or mermaid"
            raise Invalid(message, [ProblemError(pointer="", message=message)])
        workflow = await service.get(tenant, Kind.WORKFLOW, definition_id, version or "LATEST")
        assert isinstance(workflow, WorkflowDefinition)
        try:
            if drawing != "mermaid":
                check_drawable(workflow)  # before loading nodes: a refusal costs next to nothing
            nodes = await service.nodes_for_display(tenant, workflow)
            if drawing == "mermaid":
                return Response(mermaid(workflow, nodes), media_type=MERMAID)
            if drawing == "png":
                # Drawing is CPU work of a few milliseconds per state: off the event loop.
                image = await asyncio.to_thread(png, workflow, nodes)
                return Response(image, media_type=PNG)
            return Response(svg(workflow, nodes), media_type=SVG)
        except TooLargeToDraw as refused:
            raise Invalid(
                "the graph is too large to draw in this format", [ProblemError(pointer="/states", message=str(refused))]
            ) from None

    @get("/{definition_id:str}", summary="Read a workflow definition at a version")
    async def get_workflow(
        self,
        definition_id: FromPath[str],
        service: Service,
        tenant: Tenant,
        version: Version = "LATEST",
        enrich: Enrich = False,
    ) -> WorkflowDefinition:
        workflow = await service.get(tenant, Kind.WORKFLOW, definition_id, version or "LATEST")
        assert isinstance(workflow, WorkflowDefinition)
        return await service.enriched(tenant, workflow) if enrich else workflow

    @post(
        "/{definition_id:str}/publishWorkflow",
        summary="Publish the SNAPSHOT as the next version",
        status_code=200,
        response_headers=[DISCONNECTED_DOC],
    )
    async def publish_workflow(
        self, definition_id: FromPath[str], service: Service, tenant: Tenant
    ) -> Response[WorkflowDefinition]:
        return await _answer(service, tenant, await service.publish(tenant, Kind.WORKFLOW, definition_id))

    @post("/{definition_id:str}/activate", summary="Make a published version ACTIVE (or roll back)", status_code=200)
    async def activate_workflow(
        self,
        definition_id: FromPath[str],
        service: Service,
        tenant: Tenant,
        version: Annotated[str, QueryParameter(description="the published version number to activate")],
    ) -> Activation:
        return await service.activate(tenant, definition_id, version)

    @get("/{definition_id:str}/versions", summary="Published versions, oldest first")
    async def list_versions(self, definition_id: FromPath[str], service: Service, tenant: Tenant) -> list[VersionInfo]:
        return await service.versions(tenant, Kind.WORKFLOW, definition_id)
