"""`/bundle`: export workflows with everything they refer to; import a bundle all or nothing (contract 10)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter, RawBody

from drift_dsl_store.bundles import BundleService
from drift_runtime.openapi import json_request
from drift_runtime.web import problem_responses
from drift_schema.definitions import ImportResult
from drift_schema.workflow import Bundle

Bundles = NamedDependency[BundleService]
Tenant = NamedDependency[str]
WorkflowIds = Annotated[
    list[str],
    QueryParameter(name="workflowId", description="a workflow to export (repeat for several)", min_items=1),
]
Version = Annotated[
    str,
    QueryParameter(description="version of the named workflows: `LATEST` (default), `ACTIVE`, `SNAPSHOT` or a number"),
]
Flag = Annotated[bool, QueryParameter(description="default false")]


class BundleController(Controller):
    path = "/bundle"
    tags = ["bundles"]

    @get(
        "/",
        summary="Export workflows with every node and CHILD workflow they refer to, transitively",
        responses=problem_responses(404, 422),
    )
    async def export_bundle(
        self, bundles: Bundles, tenant: Tenant, workflow_ids: WorkflowIds, version: Version = "LATEST"
    ) -> Bundle:
        return await bundles.export(tenant, workflow_ids, version or "LATEST")

    @post(
        "/",
        summary="Import a bundle, all or nothing and idempotently (as `drift apply`)",
        status_code=200,
        opt=json_request(Bundle, "node and workflow definitions, imported all or nothing"),
        responses=problem_responses(409, 422),
    )
    async def import_bundle(
        self, body: RawBody, bundles: Bundles, tenant: Tenant, publish: Flag = False, activate: Flag = False
    ) -> ImportResult:
        return await bundles.import_bundle(tenant, body, publish=publish, activate=activate)
