"""Definition management (contract 10): list and delete workflows and nodes, validate a workflow without storing."""

from __future__ import annotations

from typing import Annotated

from litestar import delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter, RawBody

from drift_dsl_store.controllers.nodes import NodeDefinitionController
from drift_dsl_store.controllers.workflows import WorkflowDefinitionController
from drift_dsl_store.service import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MIN_PAGE_SIZE, DefinitionService
from drift_dsl_store.store import Kind
from drift_runtime.openapi import json_request
from drift_runtime.web import problem_responses
from drift_schema.definitions import NodePage, NodeSummary, Validation, WorkflowPage, WorkflowSummary
from drift_schema.workflow import WorkflowDefinition

Service = NamedDependency[DefinitionService]
Tenant = NamedDependency[str]
Prefix = Annotated[str, QueryParameter(description="only ids starting with this text", max_length=128)]
PageSize = Annotated[
    int,
    QueryParameter(
        name="pageSize",
        description=f"items per page, {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})",
        ge=MIN_PAGE_SIZE,
        le=MAX_PAGE_SIZE,
    ),
]
PageToken = Annotated[
    str | None,
    QueryParameter(
        name="pageToken",
        description="`nextPageToken` of the previous page (valid for the same tenant and filters only)",
        max_length=2048,
    ),
]
NodeType = Annotated[str | None, QueryParameter(name="type", description="only nodes of this type (`HTTP`, ...)")]


class WorkflowDefinitionAdminController(WorkflowDefinitionController):
    """The workflow routes plus listing, deleting and validating.

    A subclass, not a second controller on the same paths: Litestar refuses two
    controllers sharing a path (each brings its own OPTIONS handler).
    """

    @get("/", summary="List workflow definitions by id (prefix filter, pages)")
    async def list_workflows(
        self,
        service: Service,
        tenant: Tenant,
        prefix: Prefix = "",
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        page_token: PageToken = None,
    ) -> WorkflowPage:
        items, token = await service.listing(tenant, Kind.WORKFLOW, prefix, page_size, page_token, None)
        return WorkflowPage(items=[i for i in items if isinstance(i, WorkflowSummary)], next_page_token=token)

    @delete(
        "/{definition_id:str}",
        summary="Delete a workflow definition and every version (runs already started keep theirs)",
        status_code=204,
    )
    async def delete_workflow(self, definition_id: FromPath[str], service: Service, tenant: Tenant) -> None:
        await service.delete(tenant, Kind.WORKFLOW, definition_id)

    @post(
        "/validate",
        summary="Check a workflow definition as publishing would, storing nothing",
        status_code=200,
        opt=json_request(WorkflowDefinition, "a workflow definition; its nodes inline or referenced"),
        responses=problem_responses(422),
    )
    async def validate_workflow(self, body: RawBody, service: Service, tenant: Tenant) -> Validation:
        return await service.validate(tenant, body)


class NodeDefinitionAdminController(NodeDefinitionController):
    """The node routes plus listing and deleting (a subclass for the reason given above)."""

    @get("/", summary="List node definitions by id (prefix and type filters, pages)")
    async def list_nodes(
        self,
        service: Service,
        tenant: Tenant,
        prefix: Prefix = "",
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        page_token: PageToken = None,
        node_type: NodeType = None,
    ) -> NodePage:
        items, token = await service.listing(tenant, Kind.NODE, prefix, page_size, page_token, node_type)
        return NodePage(items=[i for i in items if isinstance(i, NodeSummary)], next_page_token=token)

    @delete(
        "/{definition_id:str}",
        summary="Delete a node definition and every version; 409 while a workflow's SNAPSHOT, LATEST or ACTIVE "
        "refers to it",
        status_code=204,
        responses=problem_responses(409),
    )
    async def delete_node(self, definition_id: FromPath[str], service: Service, tenant: Tenant) -> None:
        await service.delete(tenant, Kind.NODE, definition_id)
