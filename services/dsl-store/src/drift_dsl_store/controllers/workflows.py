"""`/workflowDefinition`: create, replace, read, publish, activate, list versions and draw workflows."""

from __future__ import annotations

from typing import Annotated, cast

from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter, RawBody

from drift_dsl_store.errors import Invalid
from drift_dsl_store.render import mermaid, svg
from drift_dsl_store.service import Activation, DefinitionService
from drift_dsl_store.store import Kind
from drift_schema.api import ProblemError
from drift_schema.workflow import VersionInfo, WorkflowDefinition

Version = Annotated[str, QueryParameter(description="`SNAPSHOT`, `LATEST` (highest published), `ACTIVE` or a number")]
Enrich = Annotated[
    bool, QueryParameter(name="enrichNodeDefinition", description="inline each referenced node at its version")
]
Format = Annotated[str, QueryParameter(description="`svg` (default) or `mermaid`; `png` is not supported yet")]
Service = NamedDependency[DefinitionService]
Tenant = NamedDependency[str]
SVG = "image/svg+xml"


class WorkflowDefinitionController(Controller):
    """Bodies are read raw and decoded by drift_schema, so that every error carries a JSON pointer."""

    path = "/workflowDefinition"
    tags = ["workflow definitions"]

    @post("/", summary="Create a workflow definition (its SNAPSHOT)", status_code=201)
    async def create_workflow(self, body: RawBody, service: Service, tenant: Tenant) -> Response[WorkflowDefinition]:
        workflow = await service.create(tenant, Kind.WORKFLOW, body)
        location = f"/workflowDefinition/{workflow.id}?version=SNAPSHOT"
        return Response(cast(WorkflowDefinition, workflow), status_code=201, headers={"Location": location})

    @put("/", summary="Replace the SNAPSHOT of a workflow definition")
    async def update_workflow(self, body: RawBody, service: Service, tenant: Tenant) -> WorkflowDefinition:
        return cast(WorkflowDefinition, await service.update(tenant, Kind.WORKFLOW, body))

    @get("/treeView/{definition_id:str}", summary="Draw the graph (svg or mermaid)", media_type=SVG)
    async def tree_view(
        self,
        definition_id: FromPath[str],
        service: Service,
        tenant: Tenant,
        version: Version = "LATEST",
        format: Format = "svg",
    ) -> Response[str]:
        drawing = format.strip().lower()
        if drawing not in ("svg", "mermaid"):
            message = (
                "png rendering is not supported yet; use format=svg or format=mermaid"
                if drawing == "png"
                else f"unknown format '{format}'; use svg or mermaid"
            )
            raise Invalid.from_errors(message, [ProblemError(pointer="", message=message)])
        workflow = await service.get(tenant, Kind.WORKFLOW, definition_id, version or "LATEST")
        assert isinstance(workflow, WorkflowDefinition)
        nodes = await service.nodes_for_display(tenant, workflow)
        if drawing == "mermaid":
            return Response(mermaid(workflow, nodes), media_type="text/plain; charset=utf-8")
        return Response(svg(workflow, nodes), media_type=SVG)

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

    @post("/{definition_id:str}/publishWorkflow", summary="Publish the SNAPSHOT as the next version", status_code=200)
    async def publish_workflow(
        self, definition_id: FromPath[str], service: Service, tenant: Tenant
    ) -> WorkflowDefinition:
        return cast(WorkflowDefinition, await service.publish(tenant, Kind.WORKFLOW, definition_id))

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
